"""The runner's guards on a real SQLite ledger: pause and kill flags (set from a second ledger
connection, as the CLI or API would), risk decisions in the ledger, transient errors retried to
the same end state, a tripped circuit breaker pausing trading, and the feed watchdog."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_helpers import BROKER, RISK

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.managed_policy import ArrayFeed, decisions_frame
from aitrader.engine.types import Bar, Order
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import KILL, PAUSE, Ledger
from aitrader.live.runner import STATUS, GuardConfig, Runner
from aitrader.live.summary import RunSummary
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy.base import Environment
from aitrader.strategy.feed import StrategyFeed
from aitrader.venues import paper as paper_venue
from aitrader.venues.base import TransientVenueError
from aitrader.venues.paper import LedgerSimBroker

GUARD = GuardConfig(max_errors=3, backoff_base=0.001, backoff_cap=0.005)
BARS = 400


@functools.cache
def candles(bars: int = BARS) -> pd.DataFrame:
    return load_sample("BTC-USD-1h").iloc[-bars:]


def build(ledger: Ledger, bars: int = BARS, guard: GuardConfig = GUARD) -> Runner:
    data = candles(bars)
    targets = sma_crossover_targets(data["close"].to_numpy(np.float64), 10, 30, short=True)
    feed = ArrayFeed(
        targets.reshape(-1, 1),
        np.full((1, 1), np.nan),
        np.full((1, 1), 0.03),
        np.full((1, 1), 0.06),
    )
    feeds = [ReplayFeed("BTC/USD", data, speed=0)]
    return paper_runner(feeds, feed, ledger, BROKER, RISK, {"test": "guard"}, guard)


Hook = Callable[[Runner, Mapping[str, Bar]], None]


def run(runner: Runner, before_bar: Hook | None = None, max_bars: int | None = None) -> RunSummary:
    """Run to the end; ``before_bar`` is called before each bar is processed."""
    if before_bar is not None:
        real = runner.process

        async def process(bars: Mapping[str, Bar]) -> bool:
            before_bar(runner, bars)
            return await real(bars)

        runner.process = process  # type: ignore[method-assign]
    return asyncio.run(runner.run(max_bars))


def ledger_state(ledger: Ledger) -> dict[str, Any]:
    orders = ledger.orders()
    return {
        "orders": [
            (o.client_order_id, o.qty, o.status.value, o.filled_qty, o.reduce_only, o.reason)
            for o in orders
        ],
        "fills": ledger.fills().to_dict("records"),
        "positions": ledger.positions(),
        "equity": ledger.equity_curve().reset_index().to_dict("records"),
        "decisions": ledger.risk_decisions().drop(columns="key").to_dict("records"),
    }


def decision_rows(log: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    frame = decisions_frame(log)
    columns = ["time", "symbol", "action", "requested", "approved", "reason", "intent"]
    return [tuple(r) for r in frame[columns].itertuples(index=False)]


def ledger_rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    frame = ledger.risk_decisions()
    columns = ["time", "symbol", "action", "requested_qty", "approved_qty", "reason", "intent"]
    return [tuple(r) for r in frame[columns].itertuples(index=False)]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run: its ledger state, summary and decision log."""
    with Ledger(tmp_path_factory.mktemp("clean") / "ledger.db") as ledger:
        runner = build(ledger)
        summary = run(runner)
        assert summary.fills > 10 and summary.errors == 0 and not summary.paused
        at = [(r["time"], r["symbol"]) for r in runner.policy.log]
        return {
            **ledger_state(ledger),
            **{"summary": summary, "log": list(runner.policy.log), "decisions_at": at},
        }


# -- risk decisions ---------------------------------------------------------------------------


def test_risk_decisions_in_the_ledger_equal_the_policy_log(clean: dict[str, Any]) -> None:
    rows = decision_rows(clean["log"])
    assert len(rows) > 10
    assert {r[2] for r in rows} >= {"accept"}
    assert [tuple(d.values()) for d in clean["decisions"]] == rows


class Crash(Exception):
    pass


def test_risk_decisions_are_not_duplicated_after_a_resumed_run(
    clean: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        assert run(build(ledger), max_bars=150).bars == 150
    with Ledger(path) as ledger:  # killed right after a bar's decision reached the ledger
        real, count = ledger.record_risk_decision, 0

        def failing(*args: Any, **kwargs: Any) -> bool:
            nonlocal count
            count += 1
            done = real(*args, **kwargs)
            if count == 4:
                raise Crash("killed mid-bar")
            return done

        ledger.record_risk_decision = failing  # type: ignore[method-assign]
        with pytest.raises(Crash):
            run(build(ledger))
    with Ledger(path) as ledger:
        summary = run(build(ledger))
        assert summary.resumed_from > 150
        got = ledger_state(ledger)
        assert ledger_rows(ledger) == decision_rows(clean["log"])
        assert not ledger.risk_decisions()["key"].duplicated().any()
        for key in ("orders", "fills", "positions", "equity", "decisions"):
            assert got[key] == clean[key], key


# -- pause and kill flags ---------------------------------------------------------------------


def test_pause_flag_stops_decisions_but_not_monitoring(
    clean: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    index = candles().index
    start, stop = 150, 300
    window = (index[start], index[stop - 1])
    traded = [t for t, _ in clean["decisions_at"] if window[0] <= t <= window[1]]
    assert traded  # without the pause the policy decides in the window
    with Ledger(path) as ledger, Ledger(path) as operator:

        def control(runner: Runner, bars: Mapping[str, Bar]) -> None:
            if runner.bars == start:
                operator.set_flag(PAUSE, True, "operator: maintenance")
            if runner.bars == stop:
                operator.set_flag(PAUSE, False, "operator: done")

        summary = run(build(ledger), control)
        assert summary.bars == BARS and not summary.paused
        assert len(ledger.equity_curve()) == BARS  # snapshots went on while paused
        signals = pd.read_sql("SELECT time FROM signals", ledger.engine)
        times = pd.to_datetime(signals["time"], utc=True)
        assert not times.between(*window).any()
        assert times.lt(window[0]).any() and times.gt(window[1]).any()  # trading resumed
        orders = ledger.orders()
        assert not [
            o for o in orders if o.reason == "signal" and window[0] <= o.intent_at <= window[1]
        ]
        # broker-side exits (brackets) still happen while paused; signals resume afterwards
        assert [o for o in orders if o.reason == "signal" and o.intent_at > window[1]]
        decided = ledger.risk_decisions()["time"]
        assert not decided.between(*window).any()
        messages = [e.message for e in ledger.events("control")]
        assert sum(m.startswith("trading paused at bar") for m in messages) == 1
        assert sum(m.startswith("trading resumed at bar") for m in messages) == 1
        assert ledger.load_state(STATUS)["status"] == "stopped"  # type: ignore[index]


def test_kill_flag_flattens_with_reduce_only_orders_and_blocks_entries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    killed: list[pd.Timestamp] = []
    with Ledger(path) as ledger, Ledger(path) as operator:

        def control(runner: Runner, bars: Mapping[str, Bar]) -> None:
            held = runner.policy.portfolio.positions["BTC/USD"].qty != 0
            if not killed and runner.bars >= 120 and held:
                operator.set_flag(KILL, True, "operator: stop everything")
                killed.append(bars["BTC/USD"].time)

        summary = run(build(ledger), control)
        assert killed and summary.kill_switch and summary.bars == BARS
        assert ledger.positions()["BTC/USD"].qty == 0.0
        orders = ledger.orders()
        flatten = [o for o in orders if o.reason == "kill_switch"]
        assert len(flatten) == 1 and flatten[0].reduce_only
        index = candles().index
        filled_at = index[index.get_loc(killed[0]) + 1]  # sized and filled at the next open
        assert flatten[0].intent_at == filled_at and flatten[0].status.value == "filled"
        assert [o for o in orders if o.intent_at >= filled_at] == flatten  # no new entries
        after = ledger.risk_decisions().query("time > @killed[0]")
        assert len(after) > 0 and set(after["approved_qty"]) == {0.0}
        assert after["reason"].str.startswith("kill switch engaged (kill flag").all()
        messages = [e.message for e in ledger.events("control")]
        assert "kill switch engaged (kill flag: operator: stop everything)" in messages


# -- transient errors and the circuit breaker -------------------------------------------------


def flaky_broker(
    submit_failures: set[int] = frozenset(),  # type: ignore[assignment]
    open_failures: set[int] = frozenset(),  # type: ignore[assignment]
    always_from: int | None = None,
    where: str = "submit",
) -> type[LedgerSimBroker]:
    """A paper broker whose n-th submit (or bar open, after its events ran) raises a network
    error once; from ``always_from`` on (submit count or bar index) it always raises."""
    submits = {"n": 0}
    opened: set[int] = set()

    class Flaky(LedgerSimBroker):
        def submit(self, order: Order) -> bool:
            submits["n"] += 1
            n = submits["n"]
            if n in submit_failures or (where == "submit" and always_from and n >= always_from):
                raise TransientVenueError(f"connection reset (submit {n})")
            return super().submit(order)

        def open_bar(self, i: int, bars: Mapping[str, Bar], *args: Any) -> None:
            super().open_bar(i, bars, *args)  # fills already recorded: a roll-back is needed
            if i in open_failures and i not in opened:
                opened.add(i)
                raise TimeoutError(f"exchange timed out at bar {i}")
            if where == "open" and always_from is not None and i >= always_from:
                raise TransientVenueError("exchange down")

    return Flaky


def test_transient_errors_are_retried_to_the_same_end_state(
    clean: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fills = clean["fills"]
    bars_with_fills = sorted({int(candles().index.get_loc(f["time"])) for f in fills})
    opens = set(bars_with_fills[2:8]) | {200}
    monkeypatch.setattr(paper_venue, "LedgerSimBroker", flaky_broker({3, 4, 9}, opens))
    with Ledger(tmp_path / "ledger.db") as ledger:
        runner = build(ledger)
        summary = run(runner)
        assert summary.errors == 3 + len(opens) and not summary.tripped and not summary.paused
        assert summary.equity == clean["summary"].equity  # bit-identical
        got = ledger_state(ledger)
        for key in ("orders", "fills", "positions", "equity", "decisions"):
            assert got[key] == clean[key], key
        assert decision_rows(runner.policy.log) == decision_rows(clean["log"])
        errors = ledger.events("error")
        assert len(errors) == summary.errors and {e.level for e in errors} == {"warning"}
        assert not ledger.get_flag(PAUSE).on


def test_persistent_errors_trip_the_breaker_and_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paper_venue, "LedgerSimBroker", flaky_broker(always_from=6))
    with Ledger(tmp_path / "ledger.db") as ledger:
        summary = run(build(ledger))
        assert summary.tripped and summary.paused and summary.errors == 3
        assert summary.bars == BARS and summary.skipped == 0  # monitored to the end
        assert len(ledger.equity_curve()) == BARS
        flag = ledger.get_flag(PAUSE)
        assert flag.on and flag.reason.startswith("circuit breaker tripped: 3 errors")
        assert "TransientVenueError: connection reset" in flag.reason
        assert [e.level for e in ledger.events("error")] == ["warning"] * 3 + ["error"]
        assert len(ledger.orders(statuses=["filled"])) == len(ledger.orders()) - len(
            ledger.orders(statuses=["cancelled"])
        )


def test_a_broker_that_cannot_even_monitor_skips_bars_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = flaky_broker(always_from=300, where="open")
    monkeypatch.setattr(paper_venue, "LedgerSimBroker", broker)
    with Ledger(tmp_path / "ledger.db") as ledger:
        summary = run(build(ledger))
        assert summary.tripped and summary.paused
        assert summary.bars == 300 and summary.skipped == BARS - 300
        assert len(ledger.equity_curve()) == 300
        assert ledger.get_flag(PAUSE).on


def test_non_transient_errors_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(LedgerSimBroker):
        def submit(self, order: Order) -> bool:
            raise ValueError("a bug, not the network")

    monkeypatch.setattr(paper_venue, "LedgerSimBroker", Broken)
    with Ledger(tmp_path / "ledger.db") as ledger, pytest.raises(ValueError, match="a bug"):
        run(build(ledger))


# -- the feed watchdog ------------------------------------------------------------------------


class SleepyFeed:
    """Replayed bars with one long silence after ``quiet_after`` bars."""

    def __init__(self, symbol: str, data: pd.DataFrame, quiet_after: int, quiet: float) -> None:
        self.symbol, self.replay = symbol, ReplayFeed(symbol, data)
        self.quiet_after, self.quiet = quiet_after, quiet

    async def bars(self) -> AsyncIterator[Bar]:
        n = 0
        async for bar in self.replay.bars():
            yield bar
            n += 1
            if n == self.quiet_after:
                await asyncio.sleep(self.quiet)


async def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_watchdog_marks_a_stalled_feed_degraded(tmp_path: Path) -> None:
    data = candles(40)
    targets = np.zeros((len(data), 1))
    feed = ArrayFeed(
        targets, np.full((1, 1), np.nan), np.full((1, 1), np.nan), np.full((1, 1), np.nan)
    )
    guard = GuardConfig(stall_after=0.2, check_every=0.02)
    seen: dict[str, Any] = {}
    with Ledger(tmp_path / "ledger.db") as ledger:
        runner = paper_runner([SleepyFeed("BTC/USD", data, 10, 1.0)], feed, ledger, guard=guard)

        async def scenario() -> RunSummary:
            task = asyncio.create_task(runner.run())
            seen["degraded"] = await _within(3.0, lambda: runner.status == "degraded")
            seen["doc"] = ledger.load_state(STATUS)
            seen["ok"] = await _within(3.0, lambda: runner.status == "ok")
            return await asyncio.wait_for(task, 5.0)

        summary = asyncio.run(scenario())
        assert seen["degraded"] and seen["ok"]
        assert seen["doc"]["status"] == "degraded" and seen["doc"]["stalled"] == ["BTC/USD"]
        assert "since" in seen["doc"]
        assert summary.bars == 40 and summary.status == "ok"
        messages = [e.message for e in ledger.events("feed")]
        assert messages == [
            "feed BTC/USD stalled: no bar for more than 0.2s",
            "feed BTC/USD flowing again",
        ]


def test_no_watchdog_without_a_known_bar_duration(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        runner = build(ledger, bars=50)
        assert runner.watchdog is None  # replay as fast as possible: no rhythm to watch
        paced = paper_runner(
            [ReplayFeed("BTC/USD", candles(50), speed=3600.0)], runner.policy.feed, ledger
        )
        assert paced.watchdog is not None and paced.watchdog.stall_after == pytest.approx(3.0)


class Recorder:
    """A stateful target feed (SMA crossover) that records every bar it was given."""

    def __init__(self) -> None:
        env = Environment(("BTC/USD",), "1h", Settings())
        self.inner = StrategyFeed(SmaCross(), env)
        self.seen: list[pd.Timestamp] = []
        self.decided: list[pd.Timestamp] = []

    def observe(self, bars: Mapping[str, Bar]) -> None:
        self.seen.append(bars["BTC/USD"].time)
        self.inner.observe(bars)

    def at(self, i: int, bars: Mapping[str, Bar]) -> Any:
        self.seen.append(bars["BTC/USD"].time)
        self.decided.append(bars["BTC/USD"].time)
        return self.inner.at(i, bars)


def test_a_stateful_target_feed_sees_the_bars_of_a_pause(tmp_path: Path) -> None:
    """Bars seen while paused still reach a feed that keeps state (``observe``), so its
    history has no gap when trading resumes."""
    data = candles()
    targets = Recorder()
    with Ledger(tmp_path / "ledger.db") as ledger, Ledger(tmp_path / "ledger.db") as operator:
        feeds = [ReplayFeed("BTC/USD", data, speed=0)]
        runner = paper_runner(feeds, targets, ledger, BROKER, RISK, {"test": "observe"}, GUARD)

        def control(runner: Runner, bars: Mapping[str, Bar]) -> None:
            if runner.bars in (150, 300):
                operator.set_flag(PAUSE, runner.bars == 150, "operator")

        assert run(runner, control).bars == BARS
    assert targets.seen == list(data.index)  # every bar once, paused ones included
    assert targets.decided == list(data.index[:150]) + list(data.index[300:])
