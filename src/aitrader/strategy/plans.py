"""Trade plans: entry, stop, TP1/TP2, size, leverage and EV for each signal.

The plans of the ``trade-plan`` strategy (:mod:`aitrader.strategies.trade_plan`); the engine
executes them (:mod:`aitrader.engine.exits`). The entry is the signal bar's close. The stop sits a
multiple of ATR away, beyond the last confirmed swing, or ``stop_garch`` × the GARCH volatility
agent's predicted next high-low range away (``stop_method: garch``, the range known at the
signal bar's close; the ATR stop while it is unknown); targets are R-multiples or Fibonacci
extensions of the last confirmed swing. A plan whose TP1 return net of costs is below
``min_tp1_net`` (or whose EV misses the margin) is kept as rejected, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.features.indicators import atr as atr_indicator
from aitrader.features.levels import confirmed_swings, fibonacci_levels
from aitrader.models.garch import GarchAgentModel
from aitrader.risk.config import SizingConfig
from aitrader.risk.intents import OrderIntent
from aitrader.risk.sizing import position_size
from aitrader.risk.stops import atr_stop
from aitrader.strategy.config import PlanConfig, SignalConfig
from aitrader.strategy.regimes import garch_outputs
from aitrader.strategy.signals import Signal, expected_value, resolve, round_trip_cost


@dataclass(frozen=True)
class PlanLevels:
    """Per-bar inputs of plan building, computed once for a whole series (causal)."""

    atr: np.ndarray
    swing_high: np.ndarray
    swing_low: np.ndarray
    extensions: np.ndarray
    garch_range: np.ndarray | None = None  # the GARCH agent's next-range forecast (ln H/L)


def plan_levels(
    candles: pd.DataFrame, config: PlanConfig, garch: GarchAgentModel | None = None
) -> PlanLevels:
    """ATR, last confirmed swing high/low prices, Fibonacci extensions and, with a GARCH agent,
    its predicted next high-low range at every bar."""
    h, lo, c = (candles[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close"))
    hi_idx, lo_idx = confirmed_swings(h, lo, config.swing_left, config.swing_right)
    ext, _ = fibonacci_levels(
        h, lo, config.swing_left, config.swing_right, config.fib_extensions, (hi_idx, lo_idx)
    )
    return PlanLevels(
        atr=atr_indicator(h, lo, c, config.atr_period),
        swing_high=np.where(hi_idx >= 0, h[np.maximum(hi_idx, 0)], np.nan),
        swing_low=np.where(lo_idx >= 0, lo[np.maximum(lo_idx, 0)], np.nan),
        extensions=ext,
        garch_range=None if garch is None else garch_range(garch, candles),
    )


def garch_range(garch: GarchAgentModel, candles: pd.DataFrame) -> np.ndarray:
    """The GARCH agent's predicted next high-low range ``ln(H/L)`` at every bar."""
    return np.asarray(garch_outputs(garch, candles)["garch_range"].to_numpy())


def stop_distance(levels: PlanLevels, cfg: PlanConfig, close: np.ndarray) -> np.ndarray:
    """The stop's distance per bar as a fraction of the close: ``stop_garch`` × the predicted
    range with ``stop_method: garch`` (where known), else ``stop_atr`` × ATR / close."""
    by_atr = cfg.stop_atr * levels.atr / close
    if cfg.stop_method != "garch" or levels.garch_range is None:
        return np.asarray(by_atr)
    by_garch = cfg.stop_garch * levels.garch_range
    return np.asarray(np.where(np.isfinite(by_garch), by_garch, by_atr))


@dataclass(frozen=True)
class PlanContext:
    """What every plan of one symbol/timeframe shares: equity, costs and the settings."""

    symbol: str
    timeframe: str
    equity: float
    costs: CostsConfig
    plan: PlanConfig = field(default_factory=PlanConfig)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    signal: SignalConfig = field(default_factory=SignalConfig)


@dataclass(frozen=True)
class TradePlan:
    """A complete plan for one signal; ``status`` says whether it may be traded and why not."""

    symbol: str
    timeframe: str
    time: pd.Timestamp
    side: int
    entry: float
    stop: float
    tp1: float
    tp2: float
    atr: float
    qty: float
    leverage: float
    risk_amount: float
    p_win: float
    expected_value: float
    tp1_net: float
    status: Literal["accepted", "rejected"]
    reason: str

    @property
    def risk_per_unit(self) -> float:
        return abs(self.entry - self.stop)

    def to_intent(self) -> OrderIntent:
        """The order intent the RiskManager checks before this plan is traded."""
        return OrderIntent(self.time, self.symbol, self.side * self.qty, self.entry, self.stop)


def _stop(
    side: int, entry: float, t: int, levels: PlanLevels, cfg: PlanConfig
) -> tuple[float, str]:
    """The stop price and how it was placed."""
    a = float(levels.atr[t])
    rng = math.nan if levels.garch_range is None else float(levels.garch_range[t])
    if cfg.stop_method == "garch" and math.isfinite(rng) and rng > 0:
        return entry * (1.0 - side * cfg.stop_garch * rng), "garch"
    if cfg.stop_method == "swing":
        swing = levels.swing_low[t] if side > 0 else levels.swing_high[t]
        level = float(swing) - side * cfg.swing_buffer_atr * a
        if math.isfinite(level) and side * (entry - level) > 0:
            return level, "swing"
    return float(atr_stop(entry, side, a, cfg.stop_atr)), "atr"


def _targets(
    side: int, entry: float, risk: float, t: int, levels: PlanLevels, cfg: PlanConfig
) -> tuple[float, float]:
    """TP1/TP2: R-multiples, or the Fibonacci extensions beyond the entry (R-multiples fill in)."""
    by_r = [entry + side * cfg.tp1_r * risk, entry + side * cfg.tp2_r * risk]
    if cfg.target_method == "r_multiple":
        return by_r[0], by_r[1]
    ext = levels.extensions[t]
    beyond = [float(x) for x in ext if np.isfinite(x) and side * (x - entry) > 0]
    picks = sorted(beyond, key=lambda x: side * (x - entry))[:2]
    picks = sorted(picks + by_r[len(picks) :], key=lambda x: side * (x - entry))
    return picks[0], picks[1]


def make_plan(
    candles: pd.DataFrame, levels: PlanLevels, t: int, signal: Signal, ctx: PlanContext
) -> TradePlan:
    """The plan for a long/short ``signal`` at bar ``t`` (rejected plans say why)."""
    cfg, side = ctx.plan, int(signal.side)
    entry = float(candles["close"].iat[t])
    time = pd.Timestamp(candles.index[t])
    a = float(levels.atr[t])
    if side == 0 or not math.isfinite(a) or a <= 0:
        why = "no side" if side == 0 else f"ATR({cfg.atr_period}) not available yet"
        return _rejected(ctx, time, side, entry, signal, why)
    stop, placed = _stop(side, entry, t, levels, cfg)
    risk = abs(entry - stop)
    tp1, tp2 = _targets(side, entry, risk, t, levels, cfg)
    cost = round_trip_cost(ctx.costs, ctx.signal.entry_liquidity, ctx.signal.exit_liquidity)
    tp1_net = abs(tp1 - entry) / entry - cost
    ev = float(expected_value(signal.p_win, abs(tp1 - entry) / entry, risk / entry, cost))
    sizing = ctx.sizing  # a plan has no target fraction: ``target`` sizes it fixed fractional
    if sizing.method == "target":
        sizing = sizing.model_copy(update={"method": "fixed_fractional"})
    qty = position_size(ctx.equity, entry, stop, sizing) * max(signal.multiple, 0.0)
    qty = min(qty, ctx.sizing.max_leverage * ctx.equity / entry)
    min_ev = resolve(ctx.signal, ctx.symbol, ctx.timeframe).min_ev
    status: Literal["accepted", "rejected"] = "accepted"
    reason = f"stop by {placed}, targets by {cfg.target_method}"
    if tp1_net < cfg.min_tp1_net:
        status, reason = "rejected", f"TP1 net of costs {tp1_net:.3%} < min {cfg.min_tp1_net:.3%}"
    elif ev <= min_ev:
        status, reason = "rejected", f"expected value {ev:.3%} ≤ margin {min_ev:.3%}"
    values: dict[str, Any] = {
        **{"entry": entry, "stop": stop, "tp1": tp1, "tp2": tp2, "atr": a},
        **{"qty": qty, "leverage": max(1.0, qty * entry / ctx.equity), "risk_amount": qty * risk},
        **{"p_win": signal.p_win, "expected_value": ev, "tp1_net": tp1_net},
    }
    return TradePlan(**_head(ctx, time, side), **values, status=status, reason=reason)


def _head(ctx: PlanContext, time: pd.Timestamp, side: int) -> dict[str, Any]:
    return {
        "symbol": ctx.symbol,
        "timeframe": ctx.timeframe,
        "time": time,
        "side": side,
    }


def _rejected(
    ctx: PlanContext, time: pd.Timestamp, side: int, entry: float, signal: Signal, reason: str
) -> TradePlan:
    nan = math.nan
    values: dict[str, Any] = {
        **{"entry": entry, "stop": nan, "tp1": nan, "tp2": nan, "atr": nan},
        **{"qty": 0.0, "leverage": 1.0, "risk_amount": 0.0},
        **{"p_win": signal.p_win, "expected_value": nan, "tp1_net": nan},
    }
    return TradePlan(**_head(ctx, time, side), **values, status="rejected", reason=reason)
