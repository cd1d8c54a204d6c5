"""Regressions of issue 12 against the local exchange emulator, each failing on the runtime
before its fix: a fast restart re-sending an order the exchange was still executing (H1), a
redone exit refused because a stop placed for the redo locked the position (H2), an outage
killing the process instead of pausing it (M1), and a manual trade during a run going
unnoticed (M2)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_helpers import (
    SYMBOL,
    Hooked,
    SteppingFeed,
    account,
    assert_equity_has_no_gap,
    assert_ledger_equals_exchange,
    client,
    drive,
)

from aitrader.cli.control import status_payload
from aitrader.data.samples import load_sample
from aitrader.emulator import EmulatorConfig, ExchangeEmulator, Fault, unavailable
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.engine.types import Bar
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus
from aitrader.live.runner import FeedFailed
from aitrader.venues.ccxt.calls import ExchangeCalls

ORDER = ("POST", "/api/v3/order")


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0})
    with ExchangeEmulator(config) as running:
        yield running


class Died(BaseException):
    """The process dying (SIGKILL) right after its order request reached the exchange."""


def dies_after_sending(
    emu: ExchangeEmulator, exchange: Any, threads: list[threading.Thread]
) -> None:
    """The client's first ``create_order`` sends its request (on a thread that outlives the
    "process") and dies once the exchange has received it."""
    real = exchange.create_order

    def send(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):  # the dead process never reads the answer
            real(*args, **kwargs)

    def dying(*args: Any, **kwargs: Any) -> Any:
        before = emu.requests.count(ORDER)
        thread = threading.Thread(target=send, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while emu.requests.count(ORDER) == before and time.monotonic() < deadline:
            time.sleep(0.005)
        raise Died

    exchange.create_order = dying


def test_h1_a_fast_restart_never_resends_an_order_the_exchange_may_still_execute(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    """The entry's request takes 4 s (inside its 5 s recvWindow, so the exchange executes
    it); the process dies as soon as it was sent and restarts at once: the restart waits the
    order's recvWindow out, adopts it, and never sends it a second time."""
    path, threads = tmp_path / "live.db", list[threading.Thread]()
    targets = [math.nan, 0.3, 0.3]  # a second fill under the same id would be affordable

    def exchange() -> Any:
        made = client(emu)
        made.options["recvWindow"] = 5000
        return made

    emu.inject(Fault(0, delay=4.0, path=ORDER[1], method="POST"))
    first = exchange()
    dies_after_sending(emu, first, threads)
    with Ledger(path) as ledger, pytest.raises(Died):
        drive(ledger, first, targets, SteppingFeed(emu, 3, ledger=ledger))
    with Ledger(path) as ledger:
        summary = drive(ledger, exchange(), targets, SteppingFeed(emu, 2, ledger=ledger))
        threads[0].join(10)
        assert summary.resumed_from == 1 and summary.bars == 3
        (order,) = emu.venue.orders.values()  # sent once
        assert order.status == "FILLED"
        assert ledger.get_order(order.client_order_id).status is OrderStatus.FILLED
        assert_ledger_equals_exchange(emu, ledger)
        assert any("unknown fate" in e.message for e in ledger.events("broker"))


def test_h2_a_redone_exit_cancels_the_stop_the_redo_placed_and_sells(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    """The exit's order creation answers 503 on every attempt, so the bar is redone; the redo
    places the position's native stop again before the exit is re-sent: the exit must cancel
    it first (on the old runtime the exchange refused the exit — the stop locked the coins —
    and the position stayed open)."""
    exchange = client(emu)
    real = exchange.create_order

    def exit_fails(symbol: str, kind: str, side: str, *args: Any, **kwargs: Any) -> Any:
        if side == "sell" and "stopLossPrice" not in args[-1] and not exit_fails.hit:  # type: ignore[attr-defined]
            exit_fails.hit = True  # type: ignore[attr-defined]
            emu.inject(Fault(503, path=ORDER[1], method="POST"), times=2)
        return real(symbol, kind, side, *args, **kwargs)

    exit_fails.hit = False  # type: ignore[attr-defined]
    exchange.create_order = exit_fails
    calls = ExchangeCalls(exchange, attempts=2, max_wait=1.0, sleep=lambda s: time.sleep(0.01))
    targets = [math.nan, 0.5, 0.5, 0.0]
    with Ledger(tmp_path / "live.db") as ledger:
        feed = SteppingFeed(emu, len(targets), ledger=ledger)
        summary = drive(ledger, exchange, targets, feed, calls, stop_loss=0.05)
        assert summary.bars == len(targets) and summary.errors == 1  # the exit bar, redone once
        assert [o.status for o in ledger.orders() if o.status is OrderStatus.REJECTED] == []
        assert account(emu)["BTC"] < 1e-5  # the exit sold the position
        kinds = [(o.type, o.side, o.status) for o in emu.venue.orders.values()]
        assert kinds == [
            ("MARKET", "BUY", "FILLED"),
            ("STOP_LOSS", "SELL", "CANCELED"),  # cancelled by the exit's first attempt
            ("STOP_LOSS", "SELL", "CANCELED"),  # placed by the redo, cancelled by its exit
            ("MARKET", "SELL", "FILLED"),
        ]
        assert_ledger_equals_exchange(emu, ledger)


def test_m1_an_outage_pauses_reconciling_and_resumes_on_its_own(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    """Every request answers 503 from the moment the entry is sent (its fate unknown) for
    two bars: the runner pauses, reconciling, instead of dying; when the venue is back,
    reconciliation closes the entry as never received and trading resumes by itself."""
    exchange = client(emu)
    real = exchange.create_order

    def outage_starts(*args: Any, **kwargs: Any) -> Any:
        exchange.create_order = real
        emu.inject(unavailable(503), times=100_000)
        return real(*args, **kwargs)

    def venue_back(n: int) -> None:
        if n == 3:
            emu.restore_service()

    exchange.create_order = outage_starts
    targets = [math.nan, 0.5, 0.5, 0.5, 0.5, 0.0]
    with Ledger(tmp_path / "live.db") as ledger:
        feed = Hooked(emu, len(targets), ledger, venue_back)
        summary = drive(ledger, exchange, targets, feed)
        assert summary.bars == len(targets) and summary.reconciling is None
        messages = [e.message for e in ledger.events("runner")]
        paused = [m for m in messages if m.startswith("paused, reconciling")]
        resumed = [m for m in messages if m.startswith("resumed at bar")]
        assert len(paused) == 1 and "503" in paused[0] and len(resumed) == 1
        never = [o for o in ledger.orders() if o.status is OrderStatus.CANCELLED]
        assert len(never) == 1 and never[0].filled_qty == 0  # the entry lost in the outage
        assert [o.side for o in emu.venue.orders.values()] == ["BUY", "SELL"]  # traded again
        assert not ledger.open_orders()
        assert any(e.level == "warning" for e in ledger.events("exchange"))  # retries recorded
        assert_equity_has_no_gap(ledger, len(targets))
        assert_ledger_equals_exchange(emu, ledger)


def test_m2_a_manual_trade_during_the_run_pauses_it_with_a_clear_message(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    """Someone sells part of the position on the exchange while the run holds it: the next
    bar's check finds the account changed, the run pauses (reconciling) and sends nothing
    more — no exit refused for want of coins, no entry on top."""

    def manual_sell(n: int) -> None:
        if n == 3:
            emu.client().create_order(SYMBOL, "market", "sell", 0.01)

    targets = [math.nan, 0.5, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5]
    with Ledger(tmp_path / "live.db") as ledger:
        summary = drive(
            ledger, client(emu), targets, Hooked(emu, len(targets), ledger, manual_sell)
        )
        assert summary.paused and summary.status == "reconciling"
        shown = status_payload(ledger)  # what `aitrader control status` shows meanwhile
        assert "does not match" in shown["reconciling"]
        assert summary.reconciling is not None and "does not match" in summary.reconciling
        (pause,) = [e for e in ledger.events("runner") if e.message.startswith("paused, reconc")]
        assert "BTC: ledger" in pause.message and "Undo the change" in pause.message
        assert [o.side for o in emu.venue.orders.values()] == ["BUY", "SELL"]  # ours, the manual
        assert [o.status for o in ledger.orders()] == [OrderStatus.FILLED]
        assert_equity_has_no_gap(ledger, len(targets))
        held = ledger.positions()[SYMBOL].qty
        assert math.isclose(held - 0.01, account(emu)["BTC"], abs_tol=1e-9)


class BrokenFeed(ReplayFeed):
    """A replay whose stream dies of an unexpected error after ``good`` bars."""

    def __init__(self, candles: pd.DataFrame, good: int) -> None:
        super().__init__("BTC/USD", candles, speed=0)
        self.good = good

    async def bars(self) -> AsyncIterator[Bar]:
        n = 0
        async for bar in super().bars():
            if n == self.good:
                raise ValueError("malformed kline")
            n += 1
            yield bar


def test_a_feed_that_dies_stops_the_run_loudly_and_it_resumes(tmp_path: Path) -> None:
    """Found by the torture suite: a feed task dying of an error ended the run as if the bars
    had run out (exit 0, bars missing). It now stops with the cause in the ledger, and the same
    run resumes where it stopped."""
    candles = load_sample("BTC-USD-1h").iloc[:60]
    targets = ArrayFeed(
        np.full((60, 1), 0.5), np.full((1, 1), math.nan), np.full((1, 1), 0.03),
        np.full((1, 1), math.nan),
    )  # fmt: skip
    path = tmp_path / "paper.db"
    with Ledger(path) as ledger:
        runner = paper_runner([BrokenFeed(candles, 25)], targets, ledger, config={"t": "feed"})
        with pytest.raises(FeedFailed, match="malformed kline"):
            asyncio.run(runner.run())
        assert len(ledger.equity_curve()) == 25
        last = [e.message for e in ledger.events("runner")][-1]
        assert last.startswith("stopped: a feed failed (ValueError: malformed kline)")
    with Ledger(path) as ledger:
        runner = paper_runner(
            [ReplayFeed("BTC/USD", candles)], targets, ledger, config={"t": "feed"}
        )
        summary = asyncio.run(runner.run())
        assert summary.resumed_from == 25 and summary.bars == 60
