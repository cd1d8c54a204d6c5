"""The per-bar path's shortcuts change nothing a user sees: bar times built on first read, the
account reused for the same bars, a repeated answer's row reused, the day roll read from ns.

The pinned equities and fill counts were computed with the code before these shortcuts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from engine_factories import candles

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions
from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine, replay
from aitrader.engine.types import Bar, Order, Position
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import MemoryRiskStateStore
from aitrader.strategy import Context, Strategy, TargetFrame
from aitrader.strategy.run import RunSpec, backtest_strategy, check_strategy

CONFIG = BrokerConfig(
    initial_cash=1e6, taker_fee=0.001, maker_fee=0.001, slippage_bps=0, impact=0,
    max_volume_share=None,
)  # fmt: skip
LIMITS = LimitsConfig(
    require_stop=False, max_trades_per_day=10_000, max_drawdown=0.99,
    drawdown_reduce_from=0.98, max_daily_loss=1.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    return load_sample("BTC-PERP-1m").iloc[:20_000]


def above(closes: Sequence[float], fast: int = 10, slow: int = 30) -> bool | None:
    """Whether the fast SMA of the closes is above the slow one (None: too few closes)."""
    if len(closes) < slow:
        return None
    return sum(closes[-fast:]) / fast > sum(closes[-slow:]) / slow


class UserOnBar:
    """A user's strategy on Engine + SimBroker: 1 unit long on a golden cross, flat on a death
    cross (market orders)."""

    def __init__(self) -> None:
        self.closes: list[float] = []
        self.long = False

    def on_bar(self, i: int, bars: Mapping[str, Bar]) -> Sequence[Order]:
        self.closes.append(bars["X"].close)
        up = above(self.closes)
        if up is None or up == self.long:
            return ()
        self.long = up
        return (Order("X", f"X:{i}", qty=1.0 if up else -1.0),)


class Crossing(Strategy):
    """The crossover through the contract: 50 % long or flat; checks ``ctx.time`` each bar."""

    window = 30

    def setup(self, env: object) -> None:
        self.times: list[pd.Timestamp | None] = []

    def on_bar(self, ctx: Context) -> float | None:
        self.times.append(ctx.time)
        up = above(ctx.close().tolist())
        return None if up is None else (0.5 if up else 0.0)


def test_engine_and_contract_results_are_the_pinned_ones(minutes: pd.DataFrame) -> None:
    run = Engine(UserOnBar(), SimBroker(["X"], CONFIG)).run(replay({"X": minutes}))
    assert (round(run.equity[-1], 2), len(run.fills)) == (954_965.05, 834)
    assert run.times.equals(minutes.index)
    assert [f.time for f in run.fills[:3]] == [minutes.index[k] for k in (41, 52, 70)]
    assert (run.fills[0].price, run.fills[0].fee) == (46_430.0, 46.43)
    options = RunOptions(timeframe="1m", benchmarks=False)
    spec = RunSpec(CONFIG, RiskConfig(limits=LIMITS), options, start=0, per_bar=True)
    strategy = Crossing()
    managed = backtest_strategy(strategy, {"X": minutes}, Settings(), spec)
    final = float(managed.result.equity.iloc[-1])
    assert (round(final, 2), len(managed.result.fills), len(managed.decisions)) == (
        795_910.95,
        382,
        608,
    )
    assert strategy.times == list(minutes.index)  # ctx.time: each bar's open time (UTC)


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_replayed_bar_times_are_the_index_in_its_zone(tz: str | None) -> None:
    frame = candles([(1.0, 2.0, 0.5, 1.5)] * 3)
    frame.index = frame.index.tz_convert(tz) if tz else frame.index.tz_localize(None)
    bars = [event["X"] for event in replay({"X": frame})]
    assert [b.time for b in bars] == list(frame.index)
    assert [str(b.time) for b in bars] == [str(t) for t in frame.index]
    assert [b.ns for b in bars] == frame.index.as_unit("ns").asi8.tolist()
    assert bars[1] == Bar("X", frame.index[1], 1.0, 2.0, 0.5, 1.5, 1e9)


def test_engine_restores_times_given_as_timestamps_or_ns() -> None:
    frame = candles([(1.0, 2.0, 0.5, 1.5)] * 3)
    engine = Engine(UserOnBar(), SimBroker(["X"], CONFIG))
    engine.restore(2, [1.0, 2.0], [1.0, 2.0], [frame.index[0], int(frame.index[1].value)])
    assert list(engine.result.times) == list(frame.index[:2])
    with pytest.raises(ValueError, match="2 bars but 2 equity, 2 cash and 1 time"):
        engine.restore(2, [1.0, 2.0], [1.0, 2.0], [frame.index[0]])


def test_account_follows_positions_and_cash_changed_under_the_same_bars() -> None:
    broker = SimBroker(["X"], CONFIG)
    bars = {"X": Bar("X", pd.Timestamp("2024-01-01", tz="UTC"), 10.0, 11.0, 9.0, 10.0, 5.0)}
    assert broker.account(bars).equity == 1e6
    broker.positions["X"] = Position("X", 2.0, 8.0)  # as a paper broker's restore does
    assert broker.account(bars).equity == 1e6 + 20.0
    broker.cash = 5.0
    assert (broker.account(bars).cash, broker.account(bars).equity) == (5.0, 25.0)
    moved = {"X": Bar("X", pd.Timestamp("2024-01-01", tz="UTC"), 10.0, 11.0, 9.0, 12.0, 5.0)}
    assert broker.account(moved).equity == 29.0


def test_risk_state_is_the_same_with_bar_ns_or_timestamps() -> None:
    times = pd.date_range("2024-01-01 22:00", periods=6, freq="1h", tz="UTC")
    equity = [100.0, 120.0, 90.0, 60.0, 130.0, 10.0]  # new peaks, a day roll, max drawdown
    managers = [RiskManager(RiskConfig(), store=MemoryRiskStateStore()) for _ in range(2)]
    for t, e in zip(times, equity, strict=True):
        managers[0].update_equity(t, e)
        managers[1].update_equity(int(t.value), e)
    assert managers[0].state == managers[1].state
    assert managers[1].state.kill_switch and managers[1].state.peak_equity == 130.0
    assert managers[1].state.kill_time == times[2] and managers[1].state.day == "2024-01-02"
    assert managers[1].state.day_start_equity == 90.0


class Flipping(Strategy):
    """Targets that repeat, flip sign, hit −0.0 and skip bars: every shortcut of the feed and
    policy (reused rows, repeated rows) is taken, and the vectorised twin proves the result."""

    window = 1
    CYCLE = (0.5, 0.5, None, -0.25, -0.0, 0.0, math.nan, 0.5, 1.0, 1.0, None, 0.0)

    def on_bar(self, ctx: Context) -> float | None:
        return self.CYCLE[ctx.i % len(self.CYCLE)]

    def vectorized(self, data: Mapping[str, pd.DataFrame], start: int = 0) -> TargetFrame:
        index = next(iter(data.values())).index
        cycle = [np.nan if v is None else v for v in self.CYCLE]
        values = [cycle[(i - start) % len(cycle)] for i in range(len(index))]
        return TargetFrame(pd.DataFrame({"X": values}, index=index))


def test_repeated_answers_trade_as_the_vectorised_targets(minutes: pd.DataFrame) -> None:
    config = BrokerConfig(initial_cash=1e6, taker_fee=0.001, maker_fee=0.001, slippage_bps=2)
    options = RunOptions(timeframe="1m", benchmarks=False)
    spec = RunSpec(config, RiskConfig(limits=LIMITS), options, start=0)
    report = check_strategy(Flipping, {"X": minutes.iloc[:3000]}, Settings(), spec)
    assert report.equal and report.difference is None
    assert report.equity_per_bar == report.equity_vectorized
    assert report.decisions == 3000 // 12 * 9  # None twice and NaN: no decision
