"""The asyncio paper/live runtime: one feed task per symbol, one decision loop, the ledger first.

Each symbol's feed runs as its own task and puts closed bars on a queue. The decision loop
assembles one bar per symbol for the same open time and hands it to the *same* decision path as
:func:`aitrader.engine.managed.run_managed_backtest` — :class:`~aitrader.engine.loop.Engine`
driving a :class:`~aitrader.engine.managed_policy.ManagedPolicy` — with a broker that writes
every intent, submission and fill to the :class:`~aitrader.live.ledger.Ledger` before acting
(:class:`~aitrader.venues.paper.LedgerSimBroker` for paper trading; the broker comes from a
:class:`~aitrader.venues.base.Venue`, see :func:`aitrader.live.build.start_runner`).

After each bar the equity snapshot and a checkpoint — the last processed bar, the broker's cash,
positions, brackets and pending orders, the policy's last targets, the risk state and a
fingerprint of the run's configuration — are written in **one** ledger transaction, so a crash
can never leave them out of step. A Runner started on a ledger that holds a checkpoint of the
same run resumes after that bar: it restores the state, skips the bars already processed and
goes on; a bar interrupted half-way is redone (its intents are found by their keys and fills by
their trade ids, so nothing is recorded twice) and the result equals an uninterrupted run. A
ledger of another run (different fingerprint) is refused.

Operations: before each bar the runner reads the ledger's ``pause`` and ``kill`` flags (another
process sets them); every RiskManager verdict goes to the ledger before its order; transient
errors are retried from the last checkpoint with backoff until a circuit breaker trips and pauses
trading (:mod:`aitrader.live.guard`); a watchdog saves the feeds' health as the ``status`` state
document. The broker is anything implementing :class:`~aitrader.venues.base.LedgerBroker`
(checkpoint / restore), so a live exchange broker plugs in like the paper one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import pandas as pd

from aitrader.engine.loop import Engine
from aitrader.engine.managed_policy import ManagedPolicy
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError, TransientBrokerError
from aitrader.live.events import recorded
from aitrader.live.feeds import BarFeed
from aitrader.live.fingerprint import refuse_other_run, stall_after_of
from aitrader.live.flatten import FLATTEN, FlattenControl
from aitrader.live.guard import CircuitBreaker, Watchdog, backoff_delay, finish
from aitrader.live.ledger import KILL, PAUSE, Ledger, LedgerRiskStateStore, drift_scale
from aitrader.live.records import utc_now
from aitrader.live.summary import RunSummary
from aitrader.risk.intents import RiskDecision
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import RiskState
from aitrader.strategy.base import DecisionRow
from aitrader.venues.base import LedgerBroker, ReconcileError

log = logging.getLogger(__name__)

PROGRESS = "runner"
"""Ledger state document holding the checkpoint after the last processed bar."""

STATUS = "status"
"""Ledger state document for monitoring: ``{"status", "since", "stalled", "paused"}``."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    ConnectionError,
    TransientBrokerError,
)
"""Errors of a bar that a retry may fix; anything else stops the runner (fail closed). A venue
reports its own transient failures as :class:`~aitrader.errors.TransientBrokerError`
(:class:`~aitrader.venues.base.TransientVenueError`), never as a client library's errors."""

_END = object()


class FeedFailed(TransientBrokerError):
    """A bar feed stopped on an error it could not recover from."""


@dataclass(frozen=True)
class GuardConfig:
    """How the runner survives failures: which errors are retried, the circuit breaker, the
    retry backoff and the feed watchdog."""

    errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS
    max_errors: int = 5  # failures within ``window`` seconds (no success between) trip it
    window: float = 300.0
    backoff_base: float = 0.5  # seconds before the first retry (doubling, with jitter)
    backoff_cap: float = 60.0
    stall_after: float | None = None  # None: 3 × the bar duration when known, else no watchdog
    check_every: float = 5.0  # seconds between watchdog checks
    rng: Callable[[], float] = random.random  # backoff jitter


class Runner:
    """Drives an :class:`Engine` from closed-bar feeds (one task per symbol).

    Before each bar it reads the ledger's control flags (set by the CLI or the API from another
    process): ``pause`` keeps monitoring (broker events, marks, equity, checkpoint) but asks the
    policy nothing; ``kill`` engages the RiskManager's kill switch, so the policy flattens with
    reduce-only orders and opens nothing (a kill switch with open positions overrides a pause).

    A transient error of a bar (``GuardConfig.errors``) rolls the engine back to the last
    checkpoint and redoes the bar after a backoff. That is only safe because brokers are
    idempotent on client order ids and trade ids: an order or fill already sent or recorded in
    the failed attempt is recognised, not repeated. Once the circuit breaker trips, the runner
    sets the ``pause`` flag with the errors as its reason and goes on monitoring; any other
    error propagates (fail closed). A watchdog marks the run ``degraded`` while a feed is quiet.
    """

    def __init__(
        self,
        engine: Engine,
        feeds: Sequence[BarFeed],
        ledger: Ledger,
        fingerprint: str = "",
        config: Mapping[str, Any] | None = None,
        guard: GuardConfig | None = None,
    ) -> None:
        symbols = tuple(engine.broker.symbols)
        if sorted(f.symbol for f in feeds) != sorted(symbols):
            raise ConfigError(f"one feed per symbol is required: {symbols}")
        broker, policy = engine.broker, engine.strategy
        if not isinstance(broker, LedgerBroker):
            raise ConfigError("the runner needs a broker with checkpoint() and restore(state)")
        if not isinstance(policy, ManagedPolicy):
            raise ConfigError("the runner needs the managed (risk-checked) policy")
        self.engine, self.feeds, self.ledger = engine, list(feeds), ledger
        self.broker: LedgerBroker = broker
        self.policy: ManagedPolicy = policy
        if policy.on_decision is None:
            policy.on_decision = self._record_decision
        self.symbols = symbols
        self.bars = self.dropped = self.errors = self.skipped = 0
        self.last_bar: pd.Timestamp | None = None
        self.fingerprint, self.config = fingerprint, dict(config or {})
        self.resumed_from = 0
        self.resume_after: pd.Timestamp | None = None
        self.guard = guard or GuardConfig()
        self.recoverable: tuple[type[BaseException], ...] = (*self.guard.errors, ReconcileError)
        self.breaker = CircuitBreaker(self.guard.max_errors, self.guard.window)
        self.tripped = False
        self.paused = False
        self.flatten = FlattenControl(policy, ledger)  # the operator's flatten flag
        self.stop_requested = False  # finish the bar in hand, then end (a bot's SIGTERM)
        self.reconciling: str | None = None  # paused, reconciling until the venue squares
        self.status, self.stalled = "ok", list[str]()
        stall_after = self.guard.stall_after or stall_after_of(self.feeds)
        self.watchdog = None if stall_after is None else Watchdog(stall_after)
        self._base = "{}"  # the last checkpoint as stored (JSON), parsed only to roll back
        self._decided: tuple[pd.Timestamp, str, list[DecisionRow], float] | None = None

    async def run(self, max_bars: int | None = None) -> RunSummary:
        """Decide every complete closed bar until the feeds end (or ``max_bars`` are done)."""
        self._resume()
        self._base = json.dumps(self._checkpoint(self.last_bar))
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1024)
        tasks = [
            asyncio.create_task(self._pump(f, queue), name=f"feed:{f.symbol}") for f in self.feeds
        ]
        if self.watchdog is not None:
            for feed in self.feeds:
                self.watchdog.watch(feed.symbol)
            tasks.append(asyncio.create_task(self._watch(), name="watchdog"))
        self.ledger.log_event("runner", "start", payload={"symbols": list(self.symbols)})
        self._save_status()
        try:
            with recorded(self.ledger):  # reconnects and fallbacks are ledger events
                await self._decide(queue, len(self.feeds), max_bars)
        finally:
            ended = await finish(tasks)
        self._feeds_failed(ended)
        summary = self.summary()
        self._save_status("stopped")
        self.ledger.log_event("runner", "stop", payload={"bars": summary.bars})
        return summary

    def _feeds_failed(self, ended: Sequence[object]) -> None:
        """A feed that died of an error ends the run loudly (the ledger says why; the same
        command resumes), never as if its bars had simply run out."""
        failed = [e for e in ended if isinstance(e, Exception)]
        if not failed:
            return
        text = f"{type(failed[0]).__name__}: {failed[0]}"
        self._save_status("stopped")
        self.ledger.log_event("runner", f"stopped: a feed failed ({text})", "error")
        raise FeedFailed(f"a bar feed failed ({text}): run the same command to resume") from failed[
            0
        ]

    # -- resume and roll back ---------------------------------------------------------------

    def begin(self, start: pd.Timestamp) -> None:
        """Write the checkpoint of a fresh run before its first bar (``start``: the last bar
        before it), so that a crash during the first bar resumes like any other; a ledger
        already holding a checkpoint is left as it is."""
        if self.ledger.load_state(PROGRESS) is None:
            self.ledger.save_state(PROGRESS, self._checkpoint(start))

    def _resume(self) -> None:
        """Restore the checkpoint of an interrupted run of the same configuration, if any."""
        state = self.ledger.load_state(PROGRESS)
        if state is None:
            if self.ledger.orders() or not self.ledger.equity_curve().empty:
                raise ConfigError(
                    "the ledger holds orders but no runner checkpoint; use a new ledger file"
                )
            return
        refuse_other_run(state, self.fingerprint, self.config)
        done = int(state["bars"])
        last = pd.Timestamp(state["last_bar"])
        self._restore(state, done)
        self.bars, self.last_bar, self.flatten.done = done, last, state.get("flatten")
        self.resumed_from, self.resume_after = done, last
        if done == 0 and not self.ledger.orders():
            return  # the checkpoint written by begin() of a run that has not started yet
        self.ledger.log_event(
            "runner", f"resumed after bar {done} ({last})", payload={"bars": done}, time=last
        )
        log.info("runner resumed", extra={"bars": done, "last_bar": str(last)})

    def _restore(self, state: Mapping[str, Any], done: int) -> None:
        if self.policy.risk.state != RiskState.from_json(state["risk"]):
            raise ConfigError(
                "the risk manager's state differs from the checkpoint: build the runner with "
                "aitrader.live.build.start_runner, which restores it from the ledger"
            )
        curve = self.ledger.equity_curve()
        if len(curve) != done:
            raise ConfigError(
                f"the ledger holds {len(curve)} equity snapshots, its checkpoint {done} bars"
            )
        try:
            self.broker.restore(dict(state["broker"]))
        except self.guard.errors as exc:  # a restart during an outage: paused, reconciling
            self._pause_reconciling(pd.Timestamp(state["last_bar"]), exc)
        finally:
            self.policy.restore(state["policy"], self.broker.fills)
            self.engine.restore(done, curve["equity"], curve["cash"], curve.index)

    def _rollback(self, logged: int, decided: int) -> None:
        """Back to the last checkpoint (kept in memory) after a failed attempt at a bar.

        The risk state goes back too: the runner keeps it in the ledger (as ``start_runner``
        sets it up), so a manager holding another state is rebuilt on the ledger's store.
        """
        state, risk = json.loads(self._base), self.policy.risk
        del self.policy.log[logged:]
        del risk.decisions[decided:]
        saved = RiskState.from_json(state["risk"])
        if risk.state != saved:
            store = LedgerRiskStateStore(self.ledger)
            store.save(saved)
            rebuilt = RiskManager(risk.config, store, risk.correlations)
            rebuilt.decisions = risk.decisions
            self.policy.risk = rebuilt
        try:
            self.broker.restore(_copy(state["broker"]))  # a live broker reconciles: may raise
        finally:
            self.policy.restore(state["policy"], self.broker.fills)
            result, done = self.engine.result, self.bars
            equity, cash, times = result.equity[:done], result.cash[:done], result.stamps[:done]
            self.engine.restore(done, equity, cash, times)

    def _checkpoint(self, time: pd.Timestamp | None) -> dict[str, Any]:
        return {
            **{"last_bar": None if time is None else time.isoformat(), "bars": self.bars},
            **{"fingerprint": self.fingerprint, "config": self.config},
            "broker": self.broker.checkpoint(),
            "policy": self.policy.checkpoint(),
            "risk": self.policy.risk.state.to_json(),
            "flatten": self.flatten.done,
        }

    # -- feeds ------------------------------------------------------------------------------

    async def _pump(self, feed: BarFeed, queue: asyncio.Queue[object]) -> None:
        try:
            async for bar in feed.bars():
                if self.watchdog is not None:
                    self.watchdog.beat(feed.symbol)
                    if feed.symbol in self.stalled:  # flowing again: said at once
                        self.check_feeds()
                await queue.put(bar)
        finally:
            if self.watchdog is not None:
                self.watchdog.forget(feed.symbol)
            await queue.put(_END)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.guard.check_every)
            self.check_feeds()

    def check_feeds(self) -> list[str]:
        """The watchdog's check: log newly stalled (and recovered) feeds, set ``status``
        (``degraded`` while any feed is stalled) and save it for monitoring; the stalled names."""
        if self.watchdog is None:
            return []
        stalled = self.watchdog.stalled()
        limit = self.watchdog.stall_after
        for name in sorted(set(stalled) - set(self.stalled)):
            message = f"feed {name} stalled: no bar for more than {limit:g}s"
            self.ledger.log_event("feed", message, "warning", {"feed": name, "stall_after": limit})
            log.warning("feed stalled", extra={"feed": name, "stall_after": limit})
        for name in sorted(set(self.stalled) - set(stalled)):
            self.ledger.log_event("feed", f"feed {name} flowing again", payload={"feed": name})
        changed = stalled != self.stalled
        self.stalled = stalled
        if changed:
            self.status = "degraded" if stalled else "ok"
            self._save_status()
        return stalled

    def _save_status(self, status: str | None = None) -> None:
        """The ``status`` document a monitoring API reads from the ledger."""
        document = {
            "status": status or ("reconciling" if self.reconciling else self.status),
            "since": utc_now().isoformat(),
            **{"stalled": list(self.stalled), "paused": self.paused},
            "reconciling": self.reconciling,
        }
        self.ledger.save_state(STATUS, document)

    # -- the decision loop ------------------------------------------------------------------

    async def _decide(self, queue: asyncio.Queue[object], feeds: int, max_bars: int | None) -> None:
        pending: dict[pd.Timestamp, dict[str, Bar]] = {}
        ended = 0
        more = lambda: not self.stop_requested and (max_bars is None or self.bars < max_bars)  # noqa: E731
        while ended < feeds and more():
            item = await queue.get()
            if item is _END:
                ended += 1
                continue
            assert isinstance(item, Bar)
            if self.resume_after is not None and item.time <= self.resume_after:
                self._replayed(item)  # processed before the restart
                continue
            pending.setdefault(item.time, {})[item.symbol] = item
            for time in sorted(pending):
                if len(pending[time]) < len(self.symbols):
                    continue
                self._drop_before(pending, time)
                await self.process(pending.pop(time))
                if not more():
                    break
        self.dropped += len(pending)

    def _replayed(self, bar: Bar) -> None:
        """A bar processed before the restart, replayed by the feed: a target feed that keeps
        state between bars (``observe``) takes it, so its state equals an uninterrupted run's
        (a feed seeded with the history up to the restart ignores it as already seen)."""
        observe = getattr(getattr(self.engine.strategy, "feed", None), "observe", None)
        if observe is not None:
            observe({bar.symbol: bar})

    def _drop_before(self, pending: dict[pd.Timestamp, dict[str, Bar]], time: pd.Timestamp) -> None:
        """Older incomplete bar times can no longer be decided in order: drop them, logged."""
        for old in [t for t in pending if t < time]:
            missing = sorted(set(self.symbols) - set(pending.pop(old)))
            self.dropped += 1
            self.ledger.log_event(
                "feed", f"bar {old} dropped: missing {missing}", "warning", time=old
            )

    async def process(self, bars: Mapping[str, Bar]) -> bool:
        """One complete closed bar: the control flags, then the decision path (retried on
        transient errors), the equity snapshot and the checkpoint in one ledger transaction
        (:meth:`~aitrader.live.ledger.Ledger.batch`; a failed attempt leaves nothing). While paused,
        reconciling (the venue down, or the account changed outside the run) the bar is only
        marked — nothing is sent — until a reconciliation passes. False when the bar was given
        up (the breaker had tripped and even monitoring failed)."""
        time = bars[self.symbols[0]].time
        if self.reconciling is not None and not self._recover(time):
            return self._offline(bars, time)
        attempt, decide = 0, True
        while True:
            logged, decided = len(self.policy.log), len(self.policy.risk.decisions)
            try:
                with self.ledger.batch(self.broker.durable):  # the bar: one transaction
                    decide = self._controls(time)
                    self.ledger.commit()  # control actions stand even if the bar fails
                    self._attempt(bars, decide)
                    self._commit(time)
            except self.recoverable as exc:
                attempt += 1
                retry = self._failed(exc, time, attempt, decide)
                if not self._rolled_back(logged, decided, time):
                    return self._offline(bars, time)
                if not retry:
                    self.skipped += 1
                    return False
                g = self.guard
                await asyncio.sleep(backoff_delay(attempt, g.backoff_base, g.backoff_cap, g.rng))
                continue
            self.breaker.success()
            return True

    # -- paused, reconciling ----------------------------------------------------------------

    def _rolled_back(self, logged: int, decided: int, time: pd.Timestamp) -> bool:
        """Back to the last checkpoint; False when the venue cannot be reached or squared
        (the rollback reconciles): then the runner is paused, reconciling."""
        try:
            self._rollback(logged, decided)
        except self.recoverable as exc:
            self._pause_reconciling(time, exc)
            return False
        return True

    def _pause_reconciling(self, time: pd.Timestamp, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if reason == self.reconciling:
            return
        first = self.reconciling is None
        self.reconciling = reason
        message = f"paused, reconciling at bar {time}: {reason}" if first else (
            f"still reconciling at bar {time}: {reason}"
        )  # fmt: skip
        self.ledger.log_event("runner", message, "error", {"bar": time.isoformat()})
        log.error("paused, reconciling", extra={"bar": str(time), "reason": reason})
        self._save_status()

    def _recover(self, time: pd.Timestamp) -> bool:
        """Try to square the ledger with the venue again (the rollback reconciles); True, and
        trading resumes on its own, once it passes."""
        if not self._rolled_back(len(self.policy.log), len(self.policy.risk.decisions), time):
            return False
        self.reconciling = None
        message = f"resumed at bar {time}: the venue answers and the account matches the ledger"
        self.ledger.log_event("runner", message, payload={"bar": time.isoformat()})
        log.warning("resumed after reconciling", extra={"bar": str(time)})
        self._save_status()
        return True

    def _offline(self, bars: Mapping[str, Bar], time: pd.Timestamp) -> bool:
        """A bar while paused, reconciling: marked at its close from the ledger's state (no
        exchange call), so the equity curve has no gap; the checkpoint moves past it."""
        mark = getattr(self.broker, "mark", None)
        if mark is not None:
            mark(self.bars, bars)
        account = self.broker.account(bars)
        r = self.engine.result
        self.engine.restore(
            self.bars + 1, [*r.equity, account.equity], [*r.cash, account.cash], [*r.stamps, time]
        )
        self.policy.observe(bars)
        self._commit(time)
        return True

    def _attempt(self, bars: Mapping[str, Bar], decide: bool) -> None:
        self._decided = None
        if decide:
            start = perf_counter()
            self.engine.on_bar(bars)
            explain = getattr(self.policy.feed, "decision_rows", None)
            if explain is not None:  # the strategy's decision: written with the bar's commit
                time, name, rows = explain(bars)
                self._decided = (time, name, rows, (perf_counter() - start) * 1e3)
            self.flatten.after_bar()
        else:
            self.engine.on_bar(bars, decide=False)
            self.policy.observe(bars)

    def _failed(self, exc: BaseException, time: pd.Timestamp, attempt: int, decide: bool) -> bool:
        """Record a transient error; True to retry the bar (monitoring only once tripped)."""
        self.errors += 1
        already = self.breaker.tripped
        trips = self.breaker.failure(exc)
        text = f"{type(exc).__name__}: {exc}"
        self.ledger.log_event(
            "error",
            f"bar {time}: transient error (attempt {attempt}): {text}",
            "warning",
            {"bar": time.isoformat(), "attempt": attempt, "error": text},
        )
        log.warning("transient error", extra={"bar": str(time), "attempt": attempt})
        if trips:
            self.tripped = True
            reason = f"circuit breaker tripped: {self.breaker.reason}"
            self.ledger.set_flag(PAUSE, True, reason)
            self.ledger.log_event("error", reason, "error", {"bar": time.isoformat()})
            log.error("circuit breaker tripped", extra={"reason": self.breaker.reason})
            return True
        return not (already and not decide)

    def _controls(self, time: pd.Timestamp) -> bool:
        """Read the control flags; whether the policy decides this bar."""
        flags = self.ledger.flags()
        kill, pause = flags.get(KILL), flags.get(PAUSE)
        risk, flatten = self.policy.risk, self.flatten.before_bar(flags.get(FLATTEN), time)
        risk.scale_entries(*drift_scale(self.ledger.drift()))  # a drifted model's size
        if kill is not None and kill.on and not risk.kill_switch_engaged:
            reason = f"kill flag: {kill.reason}" if kill.reason else "kill flag"
            risk.engage_kill_switch(time, reason)
            self.ledger.log_event("control", f"kill switch engaged ({reason})", "warning")
        paused = pause is not None and pause.on
        if paused != self.paused:
            self.paused = paused
            if paused:
                why = pause.reason if pause is not None else ""
                self.ledger.log_event("control", f"trading paused at bar {time} ({why})", "warning")
            else:
                self.breaker.reset()
                self.ledger.log_event("control", f"trading resumed at bar {time}")
            self._save_status()
        held = any(p.qty != 0 for p in self.policy.portfolio.positions.values())
        killing = risk.kill_switch_engaged and held  # a kill switch flattens even when paused
        return (flatten or killing) if flatten is not None else (not paused or killing)

    def _record_decision(self, decision: RiskDecision, row: Mapping[str, Any]) -> None:
        """Each RiskManager verdict to the ledger before it is acted on, keyed by bar time,
        symbol and intent so a redone bar records it once."""
        key = f"{pd.Timestamp(decision.time).isoformat()}|{decision.symbol}|{row['intent']}"
        self.ledger.record_risk_decision(decision, key=key)

    def _commit(self, time: pd.Timestamp) -> None:
        """The equity snapshot and the checkpoint in one transaction."""
        result = self.engine.result
        self.bars += 1
        self.last_bar = time
        state = self._checkpoint(time)
        stored = self.ledger.record_bar(
            time, result.equity[-1], result.cash[-1], PROGRESS, state, self._decided
        )  # the decisions (target, close, latency, Target.info) in the bar's transaction
        self._base, self._decided = stored, None  # what a restart would read back

    def summary(self) -> RunSummary:
        result = self.engine.result
        return RunSummary(
            bars=self.bars,
            orders=len(self.ledger.orders()),
            fills=len(self.broker.fills),
            equity=result.equity[-1] if result.equity else self.broker.cash,
            cash=result.cash[-1] if result.cash else self.broker.cash,
            last_bar=self.last_bar,
            dropped=self.dropped,
            resumed_from=self.resumed_from,
            resumed_after=self.resume_after,
            paused=self.paused or self.reconciling is not None,
            status="reconciling" if self.reconciling is not None else self.status,
            errors=self.errors,
            tripped=self.tripped,
            kill_switch=self.policy.risk.kill_switch_engaged,
            skipped=self.skipped,
            reconciling=self.reconciling,
        )


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep, JSON-shaped copy of a checkpoint (what a restore reads back from the ledger)."""
    copied: dict[str, Any] = json.loads(json.dumps(state))
    return copied
