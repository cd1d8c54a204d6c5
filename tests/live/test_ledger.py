"""The ledger on a real SQLite file: lifecycle, idempotency, WAL, migrations, secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from aitrader.config import ExchangeCredentials, Secrets
from aitrader.engine.types import Fill, Liquidity, Order, OrderType, Position
from aitrader.live import (
    KILL,
    PAUSE,
    Ledger,
    LedgerError,
    LedgerRiskStateStore,
    OrderStatus,
    secret_values,
)
from aitrader.live import schema as t
from aitrader.live.db import create_ledger_engine, migrate
from aitrader.risk.intents import RiskDecision
from aitrader.risk.state import RiskState

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def order(coid: str = "o-1", qty: float = 0.5, **kw: object) -> Order:
    return Order(symbol="BTC/USDT", client_order_id=coid, qty=qty, **kw)  # type: ignore[arg-type]


def fill(coid: str, qty: float, price: float, minutes: int = 0) -> Fill:
    return Fill(
        T0 + pd.Timedelta(minutes=minutes),
        "BTC/USDT",
        qty,
        price,
        fee=abs(qty) * price * 0.001,
        slippage=0.0,
        liquidity=Liquidity.TAKER,
        client_order_id=coid,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    with Ledger(tmp_path / "ledger.db") as opened:
        yield opened  # type: ignore[misc]


def test_lifecycle_intent_to_filled(ledger: Ledger) -> None:
    coid = ledger.record_intent(order(), intent_key="BTC/USDT@2024-01-01T00", time=T0)
    assert ledger.get_order(coid).status is OrderStatus.INTENT
    assert [o.client_order_id for o in ledger.open_orders()] == [coid]
    ledger.mark_submitted(coid)
    acked = ledger.mark_acknowledged(coid, "12345")
    assert (acked.status, acked.exchange_order_id) == (OrderStatus.ACKNOWLEDGED, "12345")
    assert ledger.record_fill(fill(coid, 0.2, 100.0), "t1")
    assert ledger.get_order(coid).status is OrderStatus.PARTIALLY_FILLED
    assert ledger.record_fill(fill(coid, 0.3, 110.0, 1), "t2")
    done = ledger.get_order(coid)
    assert done.status is OrderStatus.FILLED and done.closed_at is not None
    assert done.filled_qty == pytest.approx(0.5)
    assert done.avg_fill_price == pytest.approx((0.2 * 100 + 0.3 * 110) / 0.5)
    assert done.intent_at == T0
    assert ledger.open_orders() == []
    assert ledger.positions() == {"BTC/USDT": Position("BTC/USDT", 0.5, pytest.approx(106.0))}
    fills = ledger.fills(coid)
    assert list(fills["trade_id"]) == ["t1", "t2"]
    assert list(fills["side"]) == [1, 1] and fills["time"].iloc[1] == T0 + pd.Timedelta(minutes=1)


def test_same_intent_never_creates_a_second_order(ledger: Ledger) -> None:
    first = ledger.record_intent(order("a-1"), intent_key="bar-7")
    again = ledger.record_intent(order("a-2"), intent_key="bar-7")
    assert first == again == "a-1"
    assert len(ledger.orders()) == 1
    assert ledger.record_intent(order("b-1")) == ledger.record_intent(order("b-1")) == "b-1"
    assert len(ledger.orders()) == 2  # the key defaults to the client order id
    with pytest.raises(LedgerError, match="already belongs to intent bar-7"):
        ledger.record_intent(order("a-1"), intent_key="bar-8")


def test_duplicate_trade_ids_are_ignored(ledger: Ledger) -> None:
    coid = ledger.record_intent(order(qty=-1.0))
    ledger.mark_submitted(coid)
    assert ledger.record_fill(fill(coid, -0.4, 50.0), "x")
    assert not ledger.record_fill(fill(coid, -0.4, 50.0), "x")
    assert ledger.get_order(coid).filled_qty == pytest.approx(-0.4)
    assert len(ledger.fills()) == 1
    assert ledger.positions()["BTC/USDT"].qty == pytest.approx(-0.4)


def test_invalid_writes_are_refused_and_leave_nothing(ledger: Ledger) -> None:
    coid = ledger.record_intent(order(qty=1.0))
    with pytest.raises(LedgerError, match="is intent, it cannot fill"):
        ledger.record_fill(fill(coid, 1.0, 10.0), "t0")
    with pytest.raises(LedgerError, match="never submitted"):
        ledger.mark_acknowledged(coid, "9")
    ledger.mark_submitted(coid)
    with pytest.raises(LedgerError, match="wrong side"):
        ledger.record_fill(fill(coid, -1.0, 10.0), "t1")
    with pytest.raises(LedgerError, match="overfill"):
        ledger.record_fill(fill(coid, 1.5, 10.0), "t2")
    with pytest.raises(LedgerError, match="no order with client order id"):
        ledger.record_fill(fill("ghost", 1.0, 10.0), "t3")
    assert ledger.fills().empty and ledger.positions() == {}
    ledger.mark_rejected(coid, "insufficient balance")
    with pytest.raises(LedgerError, match="rejected -> cancelled is not a valid transition"):
        ledger.mark_cancelled(coid)
    assert ledger.get_order(coid).error == "insufficient balance"


def test_ack_after_fill_and_fill_after_cancel(ledger: Ledger) -> None:
    coid = ledger.record_intent(order(qty=1.0))
    ledger.mark_submitted(coid)
    ledger.record_fill(fill(coid, 1.0, 10.0), "t1")  # the response carried the fill
    acked = ledger.mark_acknowledged(coid, "77")
    assert (acked.status, acked.exchange_order_id) == (OrderStatus.FILLED, "77")
    with pytest.raises(LedgerError, match="exchange id 78 != stored 77"):
        ledger.mark_acknowledged(coid, "78")
    other = ledger.record_intent(order("o-2", qty=-2.0))
    ledger.mark_submitted(other)
    ledger.mark_cancelled(other, "signal changed")
    ledger.record_fill(fill(other, -0.5, 12.0), "t2")  # traded before the cancel landed
    late = ledger.get_order(other)
    assert late.status is OrderStatus.CANCELLED and late.filled_qty == pytest.approx(-0.5)
    pos = ledger.positions()["BTC/USDT"]
    assert pos.qty == pytest.approx(0.5) and pos.realised_pnl == pytest.approx(1.0)


def test_position_crossing_zero(ledger: Ledger) -> None:
    for i, (qty, price) in enumerate([(1.0, 100.0), (-3.0, 110.0), (2.0, 90.0)]):
        coid = ledger.record_intent(order(f"c{i}", qty=qty))
        ledger.mark_submitted(coid)
        ledger.record_fill(fill(coid, qty, price), f"t{i}")
    pos = ledger.positions()["BTC/USDT"]
    assert pos.qty == pytest.approx(0.0)
    assert pos.realised_pnl == pytest.approx(10.0 + 2 * 20.0)


def test_wal_mode_and_pragmas(ledger: Ledger, tmp_path: Path) -> None:
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    raw = sqlite3.connect(tmp_path / "ledger.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    raw.close()


def test_flags_events_and_control_log(ledger: Ledger) -> None:
    assert not ledger.get_flag(PAUSE).on
    ledger.set_flag(KILL, True, "daily loss limit")
    assert ledger.get_flag(KILL).on and ledger.get_flag(KILL).reason == "daily loss limit"
    ledger.set_flag(KILL, False, "operator reset")
    assert not ledger.get_flag(KILL).on
    ledger.log_event("reconnect", "websocket dropped", "warning", {"attempt": 3, "at": T0})
    control = ledger.events("control")
    assert [e.message for e in control] == ["flag kill on", "flag kill off"]
    last = ledger.events()[-1]
    assert (last.kind, last.payload) == ("reconnect", {"at": T0.isoformat(), "attempt": 3})


def test_signals_risk_equity_and_risk_state(ledger: Ledger) -> None:
    ledger.record_signal(T0, "BTC/USDT", 0.5, {"p_up": 0.61})
    decision = RiskDecision(T0, "BTC/USDT", "resize", "max position", 2.0, 1.0)
    ledger.record_risk_decision(decision)
    ledger.record_equity(T0, 10_100.0, 5_000.0)
    ledger.record_equity(T0 + pd.Timedelta(hours=1), 10_050.0, 5_000.0)
    curve = ledger.equity_curve()
    assert list(curve["equity"]) == [10_100.0, 10_050.0] and curve.index[0] == T0
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(t.risk_decisions)).one()
        assert (row.action, row.approved_qty, row.reason) == ("resize", 1.0, "max position")
        assert conn.execute(sa.select(t.signals.c.payload)).scalar() == '{"p_up": 0.61}'
    store = LedgerRiskStateStore(ledger)
    assert store.load() is None
    state = RiskState(kill_switch=True, kill_reason="drawdown", kill_time=T0, peak_equity=1e4)
    store.save(state)
    assert store.load() == state


def test_secrets_never_reach_the_database(tmp_path: Path) -> None:
    key, secret = "AKIA-test-key-5f2c9e", "s3cr3t-value-81d0a7"
    secrets = Secrets(
        exchanges={"binance": ExchangeCredentials(api_key=SecretStr(key), secret=SecretStr(secret))}
    )
    path = tmp_path / "secret.db"
    with Ledger(path, secrets=secret_values(secrets)) as ledger:
        ledger.log_event("error", f"request failed: apiKey={key}", "error", {"secret": secret})
        ledger.log_event("config", "loaded", payload={"creds": secrets.exchanges["binance"].secret})
        coid = ledger.record_intent(order())
        ledger.mark_rejected(coid, f"-2015 Invalid API-key {key}")
        ledger.set_flag(PAUSE, True, f"key {key} revoked")
        ledger.save_state("x", {"k": key})
        assert key not in ledger.get_order(coid).error  # type: ignore[operator]
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("secret.db"))
    assert b"**********" in blobs
    for value in (key, secret):
        assert value.encode() not in blobs


def test_open_a_v1_database_and_migrate_to_current(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_ledger_engine(path)
    assert migrate(engine, target=1) == 1
    with engine.begin() as conn:
        assert "error" not in {c["name"] for c in sa.inspect(conn).get_columns("orders")}
        assert not sa.inspect(conn).has_table("equity")
    engine.dispose()
    raw = sqlite3.connect(path)  # a v1 row, written the way v1 code wrote it
    raw.execute(
        "INSERT INTO orders (client_order_id, intent_key, symbol, qty, type, time_in_force, "
        "reduce_only, reason, status, filled_qty, avg_fill_price, intent_at, updated_at) VALUES "
        "('old-1', 'old-1', 'BTC/USDT', 1.0, 'market', 'gtc', 0, 'signal', 'submitted', 0, 0, "
        "'2023-05-01 00:00:00.000000', '2023-05-01 00:00:00.000000')"
    )
    raw.commit()
    raw.close()
    with Ledger(path) as ledger:
        assert ledger.version == t.CURRENT_VERSION == 4
        old = ledger.get_order("old-1")
        assert old.status is OrderStatus.SUBMITTED and old.error is None
        ledger.mark_rejected("old-1", "expired")
        ledger.record_equity(T0, 1.0, 1.0)
        with ledger.engine.connect() as conn:
            versions = conn.execute(sa.select(t.schema_version.c.version)).scalars().all()
            assert versions == [1, 2, 3, 4]
            _assert_schema_matches_metadata(conn)


def _assert_schema_matches_metadata(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    assert set(inspector.get_table_names()) == set(t.metadata.tables)
    for name, table in t.metadata.tables.items():
        assert [c["name"] for c in inspector.get_columns(name)] == [c.name for c in table.columns]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Ledger(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01 00:00:00')")
    raw.commit()
    raw.close()
    with pytest.raises(LedgerError, match="version 99 is newer"):
        Ledger(path)


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(LedgerError, match="needs a file"):
        Ledger("sqlite://")


def test_limit_order_fields_round_trip(ledger: Ledger) -> None:
    limit = order("l-1", qty=-0.25, type=OrderType.LIMIT, limit_price=42_000.5, reduce_only=True)
    ledger.record_intent(limit)
    stored = ledger.get_order("l-1")
    assert (stored.type, stored.limit_price, stored.reduce_only) == (
        OrderType.LIMIT,
        42_000.5,
        True,
    )
    assert stored.remaining_qty == pytest.approx(-0.25)
