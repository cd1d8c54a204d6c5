"""Shared pieces of the live tests: the risk and broker settings of the paper runs, and for
runs against the local exchange emulator a feed that steps its clock."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pandas as pd

from aitrader.emulator import ExchangeEmulator
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.engine.types import Bar
from aitrader.live.ledger import Ledger
from aitrader.live.runner import GuardConfig
from aitrader.live.summary import RunSummary
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.venues.ccxt.calls import ExchangeCalls
from aitrader.venues.ccxt.venue import LiveSetup, live_runner

SYMBOL = "BTC/USDT"

RISK = RiskConfig(  # binding limits: cool-downs, trades per day and drawdown sizing all act
    limits=LimitsConfig(
        risk_per_trade=0.04,
        require_stop=False,
        drawdown_reduce_from=0.05,
        max_trades_per_day=3,
        cooldown_after_losses=2,
        cooldown_minutes=120,
    )
)
BROKER = BrokerConfig(spread_bps=4)


class SteppingFeed:
    """Closed bars of one emulator market: each step completes the bar in progress
    (``emu.advance()``) and yields it, as a live feed would see it close. Given the run's
    ledger it closes the next bar only once the runner has recorded the last one (so an order
    fills at the next bar's open, as in a backtest, also when a bar is retried)."""

    def __init__(
        self, emu: ExchangeEmulator, bars: int, symbol: str = SYMBOL, ledger: Ledger | None = None
    ) -> None:
        self.emu, self.count, self.symbol, self.ledger = emu, bars, symbol, ledger
        self.market = emu.venue.market(symbol.replace("/", ""))

    def _recorded(self) -> int:
        return 0 if self.ledger is None else len(self.ledger.equity_curve())

    async def _settled(self, bars: int) -> None:
        deadline = time.monotonic() + 10  # a bar the runner gives up is never recorded
        await asyncio.sleep(0)
        while self.ledger is not None and self._recorded() < bars and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def bars(self) -> AsyncIterator[Bar]:
        base = self._recorded()
        for n in range(self.count):
            if n:
                await self._settled(base + n)
            closed = self.emu.now
            self.emu.advance()
            row = self.market.candles.loc[closed]
            values = (float(row[k]) for k in ("open", "high", "low", "close", "volume"))
            yield Bar(self.symbol, closed, *values)


def script(fractions: list[float], stop_loss: float | None = None) -> ArrayFeed:
    """Targets for one symbol, bar by bar (NaN: no decision)."""
    return ArrayFeed(
        np.array(fractions, dtype=np.float64).reshape(-1, 1),
        np.full((1, 1), math.nan),
        np.full((1, 1), math.nan if stop_loss is None else stop_loss),
        np.full((1, 1), math.nan),
    )


def account(emu: ExchangeEmulator) -> dict[str, float]:
    """The emulator's balances (free + locked)."""
    venue: Any = emu.venue
    with venue.lock:
        return {a: venue.free[a] + venue.locked[a] for a in venue.free}


def client(emu: ExchangeEmulator, timeout_ms: int = 5000) -> Any:
    exchange = emu.client(timeout_ms=timeout_ms)
    exchange.options["recvWindow"] = 1500  # ambiguous orders settle within 2 s
    return exchange


def quick_calls(exchange: Any, sleeps: list[float] | None = None) -> ExchangeCalls:
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        time.sleep(min(seconds, 0.05))

    return ExchangeCalls(exchange, attempts=4, max_wait=2.0, sleep=sleep)


def assert_ledger_equals_exchange(emu: ExchangeEmulator, ledger: Ledger) -> None:
    trades = emu.venue.trades
    fills = ledger.fills()
    assert sorted(fills["trade_id"]) == sorted(f"binance:{t.trade_id}" for t in trades)
    held = ledger.positions().get(SYMBOL)
    balances = account(emu)
    assert math.isclose(held.qty if held else 0.0, balances["BTC"], abs_tol=1e-12)
    ids = [o.client_order_id for o in emu.venue.orders.values()]
    assert len(ids) == len(set(ids)), "an order was sent twice"


RISK_LIVE = RiskConfig(limits=LimitsConfig(require_stop=False, risk_per_trade=1.0))


def drive(
    ledger: Ledger,
    exchange: Any,
    targets: list[float],
    feed: SteppingFeed,
    calls: ExchangeCalls | None = None,
    stop_loss: float | None = None,
    guard: GuardConfig | None = None,
) -> RunSummary:
    """One live run on the emulator through the real ccxt client, until ``feed`` ends."""
    setup = LiveSetup(
        RISK_LIVE, {"test": "faults"}, calls=calls or quick_calls(exchange),
        start=feed.emu.now - pd.Timedelta(hours=1),
        guard=guard or GuardConfig(backoff_base=0.01, backoff_cap=0.05),
    )  # fmt: skip
    runner = live_runner(exchange, [SYMBOL], script(targets, stop_loss), [feed], ledger, setup)
    return asyncio.run(asyncio.wait_for(runner.run(), 90))


class Hooked(SteppingFeed):
    """A feed that calls ``hook(n)`` before closing bar ``n`` (once the runner recorded the
    bars before it); a number it returns is a pause in seconds (no bar meanwhile)."""

    def __init__(
        self, emu: ExchangeEmulator, bars: int, ledger: Ledger, hook: Callable[[int], object]
    ):
        super().__init__(emu, bars, ledger=ledger)
        self.hook = hook

    async def bars(self) -> AsyncIterator[Bar]:
        n = 0
        async for bar in super().bars():
            yield bar
            n += 1
            await self._settled(n)
            pause = self.hook(n)
            if isinstance(pause, int | float):
                await asyncio.sleep(pause)


def assert_equity_has_no_gap(ledger: Ledger, bars: int) -> None:
    curve = ledger.equity_curve()
    assert len(curve) == bars and curve.index.is_unique
    assert (curve.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
