"""The asyncio paper/live runtime: one feed task per symbol, one decision loop, the ledger first.

Each symbol's feed runs as its own task and puts closed bars on a queue. The decision loop
assembles one bar per symbol for the same open time and hands it to the *same* decision path as
:func:`aitrader.engine.managed.run_managed_backtest` — :class:`~aitrader.engine.loop.Engine`
driving a :class:`~aitrader.engine.managed_policy.ManagedPolicy` — with a broker that writes
every intent, submission and fill to the :class:`~aitrader.live.ledger.Ledger` before acting
(:class:`~aitrader.live.paper.LedgerSimBroker` for paper trading). After each bar the equity
snapshot and the last processed bar go to the ledger too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine
from aitrader.engine.managed_policy import ManagedPolicy, TargetFeed
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.live.feeds import BarFeed
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.live.paper import LedgerSimBroker
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager

log = logging.getLogger(__name__)

PROGRESS = "runner"
"""Ledger state document holding the last processed bar."""

_END = object()


@dataclass(frozen=True)
class RunSummary:
    """What one run did: bars decided, orders and fills recorded, the final account."""

    bars: int
    orders: int
    fills: int
    equity: float
    cash: float
    last_bar: pd.Timestamp | None
    dropped: int  # bar times seen for only some symbols (never decided)


class Runner:
    """Drives an :class:`Engine` from closed-bar feeds (one task per symbol)."""

    def __init__(self, engine: Engine, feeds: Sequence[BarFeed], ledger: Ledger) -> None:
        symbols = tuple(engine.broker.symbols)
        if sorted(f.symbol for f in feeds) != sorted(symbols):
            raise ConfigError(f"one feed per symbol is required: {symbols}")
        self.engine, self.feeds, self.ledger = engine, list(feeds), ledger
        self.symbols = symbols
        self.bars = 0
        self.dropped = 0
        self.last_bar: pd.Timestamp | None = None

    async def run(self, max_bars: int | None = None) -> RunSummary:
        """Decide every complete closed bar until the feeds end (or ``max_bars`` are done)."""
        self._check_fresh()
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1024)
        tasks = [
            asyncio.create_task(self._pump(f, queue), name=f"feed:{f.symbol}") for f in self.feeds
        ]
        self.ledger.log_event("runner", "start", payload={"symbols": list(self.symbols)})
        try:
            await self._decide(queue, len(tasks), max_bars)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        summary = self.summary()
        self.ledger.log_event("runner", "stop", payload={"bars": summary.bars})
        return summary

    def _check_fresh(self) -> None:
        """Resuming on a ledger with processed bars needs recovery this version lacks: refuse."""
        done = self.ledger.load_state(PROGRESS)
        if done is not None or self.ledger.orders():
            raise ConfigError(
                "the ledger already holds a run; resuming from a ledger is not supported yet — "
                "use a new ledger file"
            )

    @staticmethod
    async def _pump(feed: BarFeed, queue: asyncio.Queue[object]) -> None:
        try:
            async for bar in feed.bars():
                await queue.put(bar)
        finally:
            await queue.put(_END)

    async def _decide(self, queue: asyncio.Queue[object], feeds: int, max_bars: int | None) -> None:
        pending: dict[pd.Timestamp, dict[str, Bar]] = {}
        ended = 0
        while ended < feeds and (max_bars is None or self.bars < max_bars):
            item = await queue.get()
            if item is _END:
                ended += 1
                continue
            assert isinstance(item, Bar)
            pending.setdefault(item.time, {})[item.symbol] = item
            for time in sorted(pending):
                if len(pending[time]) < len(self.symbols):
                    continue
                self._drop_before(pending, time)
                self.on_bar(pending.pop(time))
                if max_bars is not None and self.bars >= max_bars:
                    break
        self.dropped += len(pending)

    def _drop_before(self, pending: dict[pd.Timestamp, dict[str, Bar]], time: pd.Timestamp) -> None:
        """Older incomplete bar times can no longer be decided in order: drop them, logged."""
        for old in [t for t in pending if t < time]:
            missing = sorted(set(self.symbols) - set(pending.pop(old)))
            self.dropped += 1
            self.ledger.log_event(
                "feed", f"bar {old} dropped: missing {missing}", "warning", time=old
            )

    def on_bar(self, bars: Mapping[str, Bar]) -> None:
        """One complete closed bar through the decision path, then equity and progress."""
        time = bars[self.symbols[0]].time
        self.engine.on_bar(bars)
        result = self.engine.result
        self.ledger.record_equity(time, result.equity[-1], result.cash[-1])
        self.bars += 1
        self.last_bar = time
        self.ledger.save_state(PROGRESS, {"last_bar": time.isoformat(), "bars": self.bars})

    def summary(self) -> RunSummary:
        result = self.engine.result
        return RunSummary(
            bars=self.bars,
            orders=len(self.ledger.orders()),
            fills=len(self.engine.broker.fills),
            equity=result.equity[-1] if result.equity else self.engine.broker.cash,
            cash=result.cash[-1] if result.cash else self.engine.broker.cash,
            last_bar=self.last_bar,
            dropped=self.dropped,
        )


def paper_runner(
    feeds: Sequence[BarFeed],
    targets: TargetFeed,
    ledger: Ledger,
    broker_config: BrokerConfig | None = None,
    risk: RiskConfig | None = None,
) -> Runner:
    """A paper-trading Runner built like ``run_managed_backtest``: SimBroker (here writing to
    the ledger), a RiskManager (its state in the ledger), ManagedPolicy, Engine."""
    symbols = [f.symbol for f in feeds]
    broker = LedgerSimBroker(symbols, broker_config or BrokerConfig(), ledger)
    manager = RiskManager(risk or RiskConfig(), store=LedgerRiskStateStore(ledger))
    policy = ManagedPolicy(symbols, targets, manager, broker)
    return Runner(Engine(policy, broker), feeds, ledger)
