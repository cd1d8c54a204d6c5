"""The asyncio paper/live runtime: one feed task per symbol, one decision loop, the ledger first.

Each symbol's feed runs as its own task and puts closed bars on a queue. The decision loop
assembles one bar per symbol for the same open time and hands it to the *same* decision path as
:func:`aitrader.engine.managed.run_managed_backtest` — :class:`~aitrader.engine.loop.Engine`
driving a :class:`~aitrader.engine.managed_policy.ManagedPolicy` — with a broker that writes
every intent, submission and fill to the :class:`~aitrader.live.ledger.Ledger` before acting
(:class:`~aitrader.live.paper.LedgerSimBroker` for paper trading).

After each bar the equity snapshot and a checkpoint — the last processed bar, the broker's cash,
positions, brackets and pending orders, the policy's last targets, the risk state and a
fingerprint of the run's configuration — are written in **one** ledger transaction, so a crash
can never leave them out of step. A Runner started on a ledger that holds a checkpoint of the
same run resumes after that bar: it restores the state, skips the bars already processed and
goes on; a bar interrupted half-way is redone (its intents are found by their keys and fills by
their trade ids, so nothing is recorded twice) and the result equals an uninterrupted run. A
ledger of another run (different fingerprint) is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine
from aitrader.engine.managed_policy import ArrayFeed, ManagedPolicy, TargetFeed
from aitrader.engine.tradebook import TradeBook
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.live import schema
from aitrader.live.db import write_transaction
from aitrader.live.feeds import BarFeed, ReplayFeed
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.live.paper import LedgerSimBroker
from aitrader.live.records import to_datetime, utc_now
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import RiskState

log = logging.getLogger(__name__)

PROGRESS = "runner"
"""Ledger state document holding the checkpoint after the last processed bar."""

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
    resumed_from: int = 0  # bars already processed when this run resumed (0: a fresh run)
    resumed_after: pd.Timestamp | None = None  # the last bar processed before resuming


class Runner:
    """Drives an :class:`Engine` from closed-bar feeds (one task per symbol)."""

    def __init__(
        self,
        engine: Engine,
        feeds: Sequence[BarFeed],
        ledger: Ledger,
        fingerprint: str = "",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        symbols = tuple(engine.broker.symbols)
        if sorted(f.symbol for f in feeds) != sorted(symbols):
            raise ConfigError(f"one feed per symbol is required: {symbols}")
        self.engine, self.feeds, self.ledger = engine, list(feeds), ledger
        self.symbols = symbols
        self.bars = 0
        self.dropped = 0
        self.last_bar: pd.Timestamp | None = None
        self.fingerprint, self.config = fingerprint, dict(config or {})
        self.resumed_from = 0
        self.resume_after: pd.Timestamp | None = None

    async def run(self, max_bars: int | None = None) -> RunSummary:
        """Decide every complete closed bar until the feeds end (or ``max_bars`` are done)."""
        self._resume()
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

    def _resume(self) -> None:
        """Restore the checkpoint of an interrupted run of the same configuration, if any."""
        state = self.ledger.load_state(PROGRESS)
        if state is None:
            if self.ledger.orders() or not self.ledger.equity_curve().empty:
                raise ConfigError(
                    "the ledger holds orders but no runner checkpoint; use a new ledger file"
                )
            return
        if state.get("fingerprint") != self.fingerprint:
            held = state.get("config") or {}
            raise ConfigError(
                f"the ledger holds a different run ({_describe(held)}; fingerprint "
                f"{state.get('fingerprint')}, this run {self.fingerprint}): resume it with the "
                "same replay and settings, or use a new ledger file"
            )
        done = int(state["bars"])
        last = pd.Timestamp(state["last_bar"])
        if done != self.bars:
            self._restore(state, done)
        self.bars, self.last_bar = done, last
        self.resumed_from, self.resume_after = done, last
        self.ledger.log_event(
            "runner", f"resumed after bar {done} ({last})", payload={"bars": done}, time=last
        )
        log.info("runner resumed", extra={"bars": done, "last_bar": str(last)})

    def _restore(self, state: Mapping[str, Any], done: int) -> None:
        broker, policy = self.engine.broker, self.engine.strategy
        if not isinstance(broker, LedgerSimBroker) or not isinstance(policy, ManagedPolicy):
            raise ConfigError("resuming needs the ledger paper broker and the managed policy")
        if policy.risk.state != RiskState.from_json(state["risk"]):
            raise ConfigError(
                "the risk manager's state differs from the checkpoint: build the runner with "
                "paper_runner, which restores it from the ledger"
            )
        curve = self.ledger.equity_curve()
        if len(curve) != done:
            raise ConfigError(
                f"the ledger holds {len(curve)} equity snapshots, its checkpoint {done} bars"
            )
        broker.restore(state["broker"])
        booked = int(state["policy"]["booked"])
        policy.last = np.array([math.nan if v is None else v for v in state["policy"]["last"]])
        policy.book = TradeBook()
        for fill in broker.fills[:booked]:
            policy.book.add(fill)
        policy._booked = booked
        result = self.engine.result
        result.equity = [float(v) for v in curve["equity"]]
        result.cash = [float(v) for v in curve["cash"]]
        result.times = list(curve.index)
        self.engine._i = done

    def _checkpoint(self, time: pd.Timestamp) -> dict[str, Any]:
        state: dict[str, Any] = {
            **{"last_bar": time.isoformat(), "bars": self.bars},
            **{"fingerprint": self.fingerprint, "config": self.config},
        }
        broker, policy = self.engine.broker, self.engine.strategy
        if isinstance(broker, LedgerSimBroker) and isinstance(policy, ManagedPolicy):
            state["broker"] = broker.checkpoint()
            last = [None if math.isnan(v) else float(v) for v in policy.last]
            state["policy"] = {"last": last, "booked": policy._booked}
            state["risk"] = policy.risk.state.to_json()
        return state

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
            if self.resume_after is not None and item.time <= self.resume_after:
                continue  # processed before the restart
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
        """One complete closed bar through the decision path, then the equity snapshot and the
        checkpoint in one transaction."""
        time = bars[self.symbols[0]].time
        self.engine.on_bar(bars)
        result = self.engine.result
        self.bars += 1
        self.last_bar = time
        text = self.ledger.redact.json(self._checkpoint(time))
        snapshot = {"equity": result.equity[-1], "cash": result.cash[-1], "margin_used": 0.0}
        with write_transaction(self.ledger.engine) as conn:
            conn.execute(schema.equity.insert().values(time=to_datetime(time), **snapshot))
            row = {"value": text, "updated_at": utc_now()}
            where = schema.state.c.name == PROGRESS
            if not conn.execute(schema.state.update().where(where).values(**row)).rowcount:
                conn.execute(schema.state.insert().values(name=PROGRESS, **row))

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
            resumed_from=self.resumed_from,
            resumed_after=self.resume_after,
        )


def paper_runner(
    feeds: Sequence[BarFeed],
    targets: TargetFeed,
    ledger: Ledger,
    broker_config: BrokerConfig | None = None,
    risk: RiskConfig | None = None,
    config: Mapping[str, Any] | None = None,
) -> Runner:
    """A paper-trading Runner built like ``run_managed_backtest``: SimBroker (here writing to
    the ledger), a RiskManager (its state in the ledger), ManagedPolicy, Engine.

    On a ledger holding a checkpoint of the same run it resumes (the risk state is taken from
    the checkpoint, not from a bar interrupted half-way); ``config`` describes the run in the
    ledger (e.g. the replay and strategy) and goes into its fingerprint.
    """
    symbols = [f.symbol for f in feeds]
    broker_config, risk = broker_config or BrokerConfig(), risk or RiskConfig()
    fingerprint = run_fingerprint(feeds, targets, broker_config, risk, config)
    state = ledger.load_state(PROGRESS)
    if state is not None and state.get("fingerprint") == fingerprint and "risk" in state:
        LedgerRiskStateStore(ledger).save(RiskState.from_json(state["risk"]))
    broker = LedgerSimBroker(symbols, broker_config, ledger)
    manager = RiskManager(risk, store=LedgerRiskStateStore(ledger))
    policy = ManagedPolicy(symbols, targets, manager, broker)
    return Runner(Engine(policy, broker), feeds, ledger, fingerprint, config)


def run_fingerprint(
    feeds: Sequence[BarFeed],
    targets: TargetFeed,
    broker_config: BrokerConfig,
    risk: RiskConfig,
    config: Mapping[str, Any] | None = None,
) -> str:
    """A hash of what determines a run: symbols, broker and risk settings, ``config``, the
    replayed candles and precomputed targets (where the feeds hold them)."""
    described = {
        **{"symbols": [f.symbol for f in feeds], "config": dict(config or {})},
        **{"broker": repr(broker_config), "risk": repr(risk)},
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for feed in feeds:
        if isinstance(feed, ReplayFeed):
            digest.update(pd.util.hash_pandas_object(feed.candles).to_numpy().tobytes())
    if isinstance(targets, ArrayFeed):
        for values in (targets.fraction, targets.stop_price, targets.stop_loss):
            digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(targets.take_profit, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def _describe(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "no description"
