"""Trade plans on the one risk-managed path, hand-computed to the cent with fees and slippage.

Costs in every scenario: taker fee 0.1 %, maker fee 0.05 %, slippage 10 bps on market and stop
fills (none on the take-profit, a resting limit), no spread or impact. The strategy decides
once, at bar 0's close (100); the entry fills at bar 1's open: 50 units at 100 × 1.001 = 100.1,
fee 5.005.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.config import Settings
from aitrader.engine.config import BrokerConfig
from aitrader.engine.exits import ExitPlan, PlanState, step
from aitrader.engine.managed import ManagedResult
from aitrader.errors import ConfigError
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.strategy.base import Context, Decision, Strategy, Target, TargetFrame
from aitrader.strategy.run import RunSpec, backtest_strategy

COSTS = BrokerConfig(
    initial_cash=10_000.0, taker_fee=0.001, maker_fee=0.0005, slippage_bps=10.0, impact=0.0
)
RISK = RiskConfig(
    limits=LimitsConfig(
        risk_per_trade=1.0, require_stop=False, max_daily_loss=1.0, max_drawdown=1.0,
        drawdown_reduce_from=0.99, cooldown_minutes=0,
    )
)  # fmt: skip
ENTRY_CASH = 10_000.0 - 50 * 100.1 - 5.005  # 4,989.995


def candles(*rows: tuple[float, float, float, float]) -> pd.DataFrame:
    """Hourly bars from (open, high, low, close) rows; bar 0 is the decision bar at 100."""
    index = pd.date_range("2026-01-01", periods=len(rows) + 1, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        [(100.0, 100.0, 100.0, 100.0), *rows], columns=["open", "high", "low", "close"]
    )
    frame["volume"] = 1e9
    return frame.set_index(index.rename("timestamp"))


class Once(Strategy):
    """Returns ``target`` at the first bar, nothing after (a plan is a one-off decision)."""

    name = "once"

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def on_bar(self, ctx: Context) -> Decision:
        return self.target if ctx.i == 0 else None


class OnceVectorized(Once):
    def vectorized(self, data: dict[str, pd.DataFrame], start: int = 0) -> TargetFrame:
        index = next(iter(data.values())).index
        t = self.target

        def first(value: float) -> pd.DataFrame:
            column = np.full(len(index), np.nan)
            column[0] = value
            return pd.DataFrame({"X": column}, index=index)

        return TargetFrame(
            first(t.fraction), stop_loss=first(t.stop_loss),
            stop_price=first(t.stop_price), take_profit_price=first(t.take_profit_price),
            tp1_share=first(t.tp1_share), break_even=first(float(t.break_even)),
        )  # fmt: skip


def run(frame: pd.DataFrame, target: Target, cls: type[Once] = Once) -> ManagedResult:
    spec = RunSpec(broker=COSTS, risk=RISK)
    return backtest_strategy(cls(target), {"X": frame}, Settings(), spec)


def fills(result: ManagedResult) -> list[tuple[int, float, float, float, str]]:
    """(bar, signed qty, price, fee, reason) of every fill."""
    table = result.result.fills
    index = result.result.equity.index
    return [
        (int(index.get_loc(t)), float(side * q), float(p), float(f), str(r))
        for t, side, q, p, f, r in zip(
            table["time"], table["side"], table["qty"], table["price"], table["fee"],
            table["reason"], strict=True,
        )
    ]  # fmt: skip


HALF_AT_TP1 = Target(0.5, stop_price=95.0, take_profit_price=110.0, tp1_share=0.5, break_even=True)


@pytest.mark.parametrize("cls", [Once, OnceVectorized])
def test_tp1_closes_half_then_the_rest_exits_at_break_even(cls: type[Once]) -> None:
    frame = candles(
        (100.0, 102.0, 99.0, 101.0),  # entry at the open; stop 95.095, TP1 110.11
        (105.0, 111.0, 104.0, 108.0),  # TP1: 25 at 110.11 (maker); the stop → 100.1
        (104.0, 105.0, 99.0, 100.0),  # the break-even stop: 25 at 100.1 × 0.999
        (100.0, 101.0, 99.0, 100.0),
    )
    result = run(frame, HALF_AT_TP1, cls)
    got = fills(result)
    assert [(b, q, r) for b, q, _, _, r in got] == [
        (1, 50.0, "signal"), (2, -25.0, "take_profit"), (3, -25.0, "stop_loss"),
    ]  # fmt: skip
    assert [p for _, _, p, _, _ in got] == pytest.approx([100.1, 110.11, 99.9999], abs=1e-9)
    assert [f for _, _, _, f, _ in got] == pytest.approx([5.005, 1.376375, 2.4999975], abs=1e-9)
    equity = result.result.equity.to_numpy()
    cash_after_tp1 = ENTRY_CASH + 25 * 110.11 - 1.376375
    assert equity[1] == pytest.approx(ENTRY_CASH + 50 * 101.0, abs=1e-6)
    assert equity[2] == pytest.approx(cash_after_tp1 + 25 * 108.0, abs=1e-6)
    final = cash_after_tp1 + 25 * 99.9999 - 2.4999975
    assert round(final, 2) == 10_238.87
    assert equity[3] == pytest.approx(final, abs=1e-6) and equity[4] == equity[3]
    trades = result.result.trades
    assert len(trades) == 1 and trades["exit_reason"].iat[0] == "stop_loss"
    assert float(trades["pnl"].iat[0]) == pytest.approx(final - 10_000.0, abs=1e-6)


def test_without_break_even_the_rest_keeps_the_first_stop() -> None:
    frame = candles(
        (100.0, 102.0, 99.0, 101.0),
        (105.0, 111.0, 104.0, 108.0),  # TP1
        (104.0, 105.0, 99.0, 100.0),  # above 95.095: still open
    )
    plan = Target(0.5, stop_price=95.0, take_profit_price=110.0, tp1_share=0.5)
    got = fills(run(frame, plan))
    assert [(b, q, r) for b, q, _, _, r in got] == [(1, 50.0, "signal"), (2, -25.0, "take_profit")]


def test_trailing_stop_ratchets_and_exits_at_the_trailed_level() -> None:
    frame = candles(
        (100.0, 104.0, 100.0, 103.0),  # best 104: stop 104 − 2.002 = 101.998
        (103.0, 106.0, 102.5, 105.0),  # best 106: stop 103.998
        (105.0, 105.5, 104.5, 105.0),  # best stays 106: stop stays 103.998
        (104.5, 105.0, 103.0, 103.5),  # through 103.998: out at 103.998 × 0.999
    )
    got = fills(run(frame, Target(0.5, stop_loss=0.05, trail=0.02)))
    assert got[1][0] == 4 and got[1][4] == "stop_loss" and got[1][1] == -50.0
    assert got[1][2] == pytest.approx(103.998 * 0.999, abs=1e-9)


def test_time_stop_exits_after_n_bars_held() -> None:
    frame = candles(
        (100.0, 101.0, 99.0, 100.0),  # held 1
        (100.0, 101.0, 99.0, 100.0),  # held 2
        (100.0, 101.0, 99.0, 102.0),  # held 3: the exit is ordered at this close
        (103.0, 104.0, 102.0, 103.0),  # filled at the open: 103 × 0.999
        (103.0, 104.0, 102.0, 103.0),
    )
    result = run(frame, Target(0.5, stop_loss=0.5, time_stop=3))
    got = fills(result)
    assert [(b, q, r) for b, q, _, _, r in got] == [(1, 50.0, "signal"), (4, -50.0, "time_stop")]
    assert got[1][2] == pytest.approx(102.897, abs=1e-9)
    assert "time_stop" in set(result.decisions["intent"])


def test_stop_before_target_when_one_bar_reaches_both() -> None:
    frame = candles(
        (100.0, 102.0, 99.0, 101.0),
        (101.0, 112.0, 94.0, 108.0),  # TP1 110.11 and stop 95.095 both inside: the stop
        (108.0, 112.0, 107.0, 110.0),
    )
    got = fills(run(frame, HALF_AT_TP1))
    assert [(b, q, r) for b, q, _, _, r in got] == [(1, 50.0, "signal"), (2, -50.0, "stop_loss")]
    assert got[1][2] == pytest.approx(95.095 * 0.999, abs=1e-9)


def test_tp2_closes_the_rest_after_tp1() -> None:
    frame = candles(
        (100.0, 102.0, 99.0, 101.0),
        (105.0, 111.0, 104.0, 108.0),  # TP1 at 110.11
        (109.0, 121.0, 108.0, 118.0),  # TP2: 100.1 × 1.2 = 120.12
    )
    plan = Target(0.5, stop_price=95.0, take_profit_price=110.0, tp1_share=0.5, tp2=0.2)
    got = fills(run(frame, plan))
    assert [(b, q, r) for b, q, _, _, r in got][1:] == [
        (2, -25.0, "take_profit"), (3, -25.0, "take_profit"),
    ]  # fmt: skip
    assert got[2][2] == pytest.approx(120.12, abs=1e-9)


def test_an_impossible_plan_is_refused_with_the_field_named() -> None:
    with pytest.raises(ConfigError, match="tp1_share"):
        Target(1.0, tp1_share=1.5)
    with pytest.raises(ConfigError, match="time_stop"):
        Target(1.0, time_stop=-2)


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    moves=st.lists(
        st.tuples(st.floats(-0.05, 0.05), st.floats(0, 0.03), st.booleans()),
        min_size=1,
        max_size=30,
    ),
    trail=st.one_of(st.just(math.nan), st.floats(0.001, 0.1)),
    break_even=st.booleans(),
)
def test_the_stop_never_loosens_and_a_plan_never_grows_the_position(
    side: int, moves: list[tuple[float, float, bool]], trail: float, break_even: bool
) -> None:
    plan = ExitPlan(side, stop=0.05, tp1=0.05, share=0.5, tp2=0.1, break_even=break_even,
                    trail=trail)  # fmt: skip
    state, price, qty = PlanState(plan), 100.0, side * 10.0
    stops: list[float] = []
    for drift, spread, tp_hit in moves:
        price *= 1 + drift
        high, low = price * (1 + spread), price * (1 - spread)
        verdict = step(state, qty, 100.0, (high, low), tp_hit)
        assert verdict in ("", "time_stop")
        stops.append(state.stop)
        assert state.share <= plan.share or state.share == 1.0
        if state.phase == "after_tp1":
            assert state.share == 1.0
    finite = [s for s in stops if not math.isnan(s)]
    assert all(side * (b - a) >= 0 for a, b in itertools.pairwise(finite))
    assert step(state, 0.0, 100.0, (price, price), False) == "done"


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(-0.04, 0.04), st.floats(0.0, 0.03), st.floats(0.0, 0.03)),
        min_size=3,
        max_size=25,
    ),
    side=st.sampled_from([1.0, -1.0]),
    trail=st.one_of(st.just(math.nan), st.floats(0.005, 0.05)),
)
def test_a_plan_only_ever_reduces_its_position_and_enters_once(
    steps: list[tuple[float, float, float]], side: float, trail: float
) -> None:
    rows, price = [], 100.0
    for drift, up, down in steps:
        close = price * (1 + drift)
        rows.append((price, max(price, close) * (1 + up), min(price, close) * (1 - down), close))
        price = close
    plan = Target(0.5 * side, stop_loss=0.03, take_profit=0.02, tp1_share=0.5, tp2=0.04,
                  break_even=True, trail=trail, time_stop=10)  # fmt: skip
    got = fills(run(candles(*rows), plan))
    held = 0.0
    for n, (_, qty, _, _, reason) in enumerate(got):
        if n == 0:
            assert reason == "signal" and qty * side > 0  # the one entry
        else:
            assert reason != "signal" and qty * held < 0 and abs(qty) <= abs(held) + 1e-9
        held += qty
    assert len([f for f in got if f[4] == "take_profit"]) <= 2
