"""The ledger's writer API on a real SQLite file: a bar's writes in one transaction (all or
nothing), visible to other connections only once committed, durable where orders leave the
process, and the control flags still read fresh from another process's writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from aitrader.engine.types import Order
from aitrader.live import KILL, Ledger, OrderStatus
from aitrader.live.db import joined, write_transaction

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def other_reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=10)


def count(path: Path, table: str) -> int:
    with other_reader(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_bar_is_one_transaction_visible_to_others_only_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        with ledger.batch(durable=False):
            ledger.record_intent(Order("BTC/USDT", "o-1", qty=0.5), time=T0)
            ledger.mark_submitted("o-1")
            stored = ledger.record_bar(T0, 10_000.0, 5_000.0, "runner", {"bars": 1})
            assert ledger.get_order("o-1").status is OrderStatus.SUBMITTED  # sees its writes
            assert count(path, "orders") == 0 and count(path, "equity") == 0
        assert count(path, "orders") == 1 and count(path, "equity") == 1
        assert ledger.load_state("runner") == {"bars": 1} and stored == '{"bars": 1}'
        curve = ledger.equity_curve()
        assert curve.index[0] == T0 and curve["equity"].iloc[0] == 10_000.0
        assert curve["cash"].iloc[0] == 5_000.0


def test_a_failed_bar_leaves_nothing_behind(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        with pytest.raises(TimeoutError), ledger.batch(durable=False):
            ledger.record_intent(Order("BTC/USDT", "o-1", qty=0.5), time=T0)
            ledger.record_bar(T0, 10_000.0, 10_000.0, "runner", {"bars": 1})
            raise TimeoutError("the venue timed out mid-bar")
        assert ledger.orders() == [] and ledger.equity_curve().empty
        assert ledger.load_state("runner") is None


def test_commit_makes_an_intent_durable_before_it_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        with pytest.raises(TimeoutError), ledger.batch(durable=True):
            ledger.record_intent(Order("BTC/USDT", "o-1", qty=0.5), time=T0)
            ledger.mark_submitted("o-1")
            ledger.commit()  # what a venue does right before the request leaves
            assert count(path, "orders") == 1
            ledger.mark_acknowledged("o-1", "x-1")
            raise TimeoutError("the answer never came")
        (order,) = ledger.orders()
        assert order.status is OrderStatus.SUBMITTED and order.exchange_order_id is None


def test_synchronous_is_normal_only_inside_a_paper_batch(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:

        def level() -> int:
            conn = joined(ledger.engine)
            assert conn is not None
            driver = conn.connection.driver_connection
            assert driver is not None
            return int(driver.execute("PRAGMA synchronous").fetchone()[0])

        with ledger.batch(durable=False):
            assert level() == 1  # NORMAL
        with ledger.batch(durable=True):
            assert level() == 2  # FULL
        with ledger.engine.connect() as conn:  # every other write: FULL
            driver = conn.connection.driver_connection
            assert driver is not None
            assert int(driver.execute("PRAGMA synchronous").fetchone()[0]) == 2


def test_flags_set_by_another_process_are_seen_at_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as runner, Ledger(path) as operator:
        with runner.batch(durable=False):
            assert runner.flags() == {}
        operator.set_flag(KILL, True, "operator")
        with runner.batch(durable=False):
            assert runner.flags()[KILL].on and runner.flags()[KILL].reason == "operator"
        runner.set_flag(KILL, False)
        assert not runner.flags()[KILL].on
        assert not operator.flags()[KILL].on


def test_a_write_transaction_inside_a_batch_joins_it(tmp_path: Path) -> None:
    """Code writing through ``write_transaction(ledger.engine)`` inside the runner's bar joins
    the bar's transaction instead of waiting on its lock."""
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        with ledger.batch(durable=False):
            ledger.log_event("test", "in the batch")
            with write_transaction(ledger.engine) as conn:
                assert conn is joined(ledger.engine)
            assert count(path, "events") == 0
        assert [e.message for e in ledger.events("test")] == ["in the batch"]
