"""Trade plans on crafted series: hand-computed entry, stop, targets, size and rejections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig, Settings
from aitrader.features.indicators import atr
from aitrader.risk.config import RiskConfig, SizingConfig
from aitrader.risk.intents import PortfolioSnapshot
from aitrader.risk.limits import RiskManager
from aitrader.strategies.trade_plan import Probabilities, TradePlanStrategy
from aitrader.strategy.base import Environment
from aitrader.strategy.config import PlanConfig, SignalConfig
from aitrader.strategy.plans import PlanContext, TradePlan, make_plan, plan_levels
from aitrader.strategy.signals import Signal

COSTS = CostsConfig()  # round trip 0.24 %


def latest_plan(candles: pd.DataFrame, signal: Signal, ctx: PlanContext) -> TradePlan:
    """The plan for the last bar (what ``aitrader scan`` prints)."""
    return make_plan(candles, plan_levels(candles, ctx.plan), len(candles) - 1, signal, ctx)


def frame(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="timestamp")
    opens = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {"open": opens, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    )


def flat(n: int = 30) -> pd.DataFrame:
    """Close 100, high 101, low 99: every true range is 2, so ATR(14) is exactly 2."""
    return frame(np.full(n, 101.0), np.full(n, 99.0), np.full(n, 100.0))


def ctx(plan: PlanConfig | None = None, sizing: SizingConfig | None = None) -> PlanContext:
    return PlanContext(
        "BTC/USD", "1h", 10_000.0, COSTS, plan or PlanConfig(), sizing or SizingConfig()
    )


def long(p: float = 0.6, multiple: float = 1.0) -> Signal:
    return Signal(1, multiple, p, 0.0, "trade")


def test_atr_stop_and_r_multiple_targets() -> None:
    plan = latest_plan(flat(), long(), ctx())
    assert plan.status == "accepted", plan.reason
    assert (plan.entry, plan.atr) == (100.0, pytest.approx(2.0))
    assert plan.stop == pytest.approx(97.0)  # 1.5 ATR
    assert (plan.tp1, plan.tp2) == (pytest.approx(103.0), pytest.approx(106.0))
    assert plan.qty == pytest.approx(100 / 3)  # 1 % of 10 000 over a 3.0 stop distance
    assert plan.risk_amount == pytest.approx(100.0)
    assert plan.leverage == 1.0
    assert plan.tp1_net == pytest.approx(0.03 - 0.0024)
    assert plan.expected_value == pytest.approx(0.6 * 0.03 - 0.4 * 0.03 - 0.0024)


def test_short_plan_mirrors_and_bands_scale_size_up_to_the_leverage_cap() -> None:
    short = latest_plan(flat(), Signal(-1, 2.0, 0.7, 0.0, "trade"), ctx())
    assert (short.stop, short.tp1, short.tp2) == pytest.approx((103.0, 97.0, 94.0))
    assert short.qty == pytest.approx(200 / 3)
    capped = latest_plan(flat(), long(multiple=4.0), ctx())
    assert capped.qty == pytest.approx(100.0)  # 133 units would need 1.33× leverage
    levered = latest_plan(flat(), long(multiple=4.0), ctx(sizing=SizingConfig(max_leverage=2)))
    assert levered.qty == pytest.approx(400 / 3) and levered.leverage == pytest.approx(4 / 3)


def test_rejected_when_tp1_net_of_costs_is_too_small() -> None:
    plan = latest_plan(flat(), long(), ctx(PlanConfig(stop_atr=0.1, min_tp1_net=0.002)))
    assert plan.status == "rejected"
    assert plan.tp1_net == pytest.approx(0.002 - 0.0024)  # TP1 0.2 % away, costs 0.24 %
    assert "TP1 net of costs -0.040% < min 0.200%" in plan.reason


def test_rejected_when_ev_misses_the_margin_or_atr_is_warming_up() -> None:
    weak = latest_plan(flat(), long(p=0.5), ctx())  # 0.5·3 % − 0.5·3 % − 0.24 % < 0
    assert weak.status == "rejected" and "expected value" in weak.reason
    early = latest_plan(flat(10), long(), ctx())
    assert early.status == "rejected" and "ATR(14) not available" in early.reason


def test_swing_stop_beyond_the_last_confirmed_low() -> None:
    candles = flat(30)
    candles.iloc[20, candles.columns.get_loc("low")] = 95.0  # a swing low, confirmed at bar 22
    cfg = PlanConfig(stop_method="swing", swing_left=2, swing_right=2, swing_buffer_atr=0.5)
    plan = latest_plan(candles, long(), ctx(cfg))
    h, lo, c = (candles[k].to_numpy() for k in ("high", "low", "close"))
    a = float(atr(h, lo, c, 14)[-1])
    assert plan.stop == pytest.approx(95.0 - 0.5 * a)
    assert plan.tp1 == pytest.approx(100.0 + (100.0 - plan.stop))
    early = make_plan(candles, plan_levels(candles, cfg), 21, long(), ctx(cfg))
    assert early.stop == pytest.approx(100.0 - 1.5 * float(plan_levels(candles, cfg).atr[21]))
    assert "stop by atr" in early.reason  # the swing is not confirmed yet at bar 21


def fib_series() -> pd.DataFrame:
    """100 → 90 (bar 5) → 110 (bar 15) → 100 (bar 25), range ±0.5 around the close."""
    close = np.r_[np.linspace(100, 90, 6), np.linspace(92, 110, 10), np.linspace(109, 100, 10)]
    return frame(close + 0.5, close - 0.5, close)


def test_fibonacci_extension_targets() -> None:
    candles = fib_series()
    cfg = PlanConfig(target_method="fibonacci", swing_left=2, swing_right=2)
    plan = latest_plan(candles, long(), ctx(cfg))
    swing = 110.5 - 89.5  # low 89.5 at bar 5, high 110.5 at bar 15
    assert plan.tp1 == pytest.approx(89.5 + 1.272 * swing)
    assert plan.tp2 == pytest.approx(89.5 + 1.618 * swing)
    short = latest_plan(candles, Signal(-1, 1.0, 0.6, 0.0, "trade"), ctx(cfg))
    risk = short.stop - short.entry  # no extension below: R-multiples fill in
    assert (short.tp1, short.tp2) == pytest.approx((100.0 - risk, 100.0 - 2 * risk))


def test_the_trade_plan_strategy_targets_each_fresh_signal_with_its_plan() -> None:
    candles = flat(40)
    p = pd.Series(np.where(np.arange(40) % 10 == 9, 0.7, 0.5), index=candles.index)
    strategy = TradePlanStrategy()
    strategy.use(Probabilities(p, None, "test"), SignalConfig())
    strategy.setup(Environment(("X",), "1h", Settings(costs=COSTS)))
    frame = strategy.vectorized({"X": candles})
    decided = frame.fraction["X"].dropna()
    # bar 9's plan is rejected (no ATR(14) yet); then a plan per signal, at the 2× band
    assert list(decided.index) == list(candles.index[[19, 29, 39]])
    assert decided.tolist() == [2.0, 2.0, 2.0]

    def levels(name: str) -> list[float]:
        table = getattr(frame, name)
        assert table is not None
        return table["X"].dropna().tolist()

    # ATR 2: stop 1.5 ATR below 100, TP1 at 1 R, TP2 at 2 R, half at TP1, trail 2 ATR
    assert levels("stop_price") == [97.0] * 3 and levels("take_profit_price") == [103.0] * 3
    assert levels("tp2_price") == [106.0] * 3 and levels("tp1_share") == [0.5] * 3
    assert levels("break_even") == [1.0] * 3
    assert levels("trail") == pytest.approx([0.04] * 3)


def test_plan_to_intent_passes_the_risk_manager() -> None:
    plan = latest_plan(flat(), long(), ctx())
    intent = plan.to_intent()
    assert (intent.qty, intent.price, intent.stop) == (pytest.approx(100 / 3), 100.0, 97.0)
    decision = RiskManager(RiskConfig()).check(intent, PortfolioSnapshot(10_000.0))
    assert decision.action == "accept"  # 1 % risk ≤ the 2 % risk-per-trade limit
