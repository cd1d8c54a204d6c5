"""Adaptive mode selection (scalping / intraday / swing) and market-regime labels.

Each mode is scored on its own timeframe over its own look-back: trend strength
(|mean log return| / volatility), volatility relative to the round-trip cost, and liquidity
(median quote volume per bar), each normalised to [0, 1] and weighted per mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.data.resample import resample
from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import DataError
from aitrader.features.statistics import pct_rank, rolling_sharpe, trend_strength
from aitrader.features.volatility import realized_vol
from aitrader.risk.config import RiskConfig
from aitrader.strategy.config import ModeConfig, ModesConfig, RegimeConfig, SignalConfig

UNKNOWN_REGIME = "unknown"


@dataclass(frozen=True)
class ModeScore:
    """One mode's measurements on one timeframe and its weighted score (NaN: not scorable)."""

    mode: str
    timeframe: str | None
    trend_strength: float
    volatility: float
    liquidity: float
    trend_score: float
    vol_score: float
    liq_score: float
    score: float
    note: str = ""

    @property
    def available(self) -> bool:
        return math.isfinite(self.score)


@dataclass(frozen=True)
class ModeChoice:
    """The chosen mode and timeframe and every mode's score (for the report)."""

    mode: str
    timeframe: str | None
    scores: tuple[ModeScore, ...]
    reason: str

    def table(self) -> pd.DataFrame:
        """One row per mode: measurements, component scores, total, note."""
        rows = [s.__dict__ for s in self.scores]
        return pd.DataFrame(rows).set_index("mode")


def market_metrics(candles: pd.DataFrame, lookback: int) -> tuple[float, float, float]:
    """Trend strength |mean r|/σ, realised volatility σ and median quote volume, last window."""
    close = candles["close"].to_numpy(dtype=np.float64)
    strength = abs(float(rolling_sharpe(close, lookback)[-1]))
    sigma = float(realized_vol(close, lookback)[-1])
    recent = candles.iloc[-lookback:]
    liquidity = float(np.median(recent["volume"].to_numpy() * recent["close"].to_numpy()))
    return strength, sigma, liquidity


def _unavailable(name: str, timeframe: str | None, note: str) -> ModeScore:
    nan = math.nan
    return ModeScore(name, timeframe, nan, nan, nan, nan, nan, nan, nan, note)


def score_timeframe(
    name: str,
    mode: ModeConfig,
    timeframe: str,
    candles: pd.DataFrame | None,
    config: ModesConfig,
    cost: float,
) -> ModeScore:
    """The mode's score on candles of one of its timeframes."""
    have = 0 if candles is None else len(candles)
    if candles is None or have < mode.lookback + 1:
        return _unavailable(
            name, timeframe, f"needs {mode.lookback + 1} {timeframe} bars, has {have}"
        )
    strength, sigma, liquidity = market_metrics(candles, mode.lookback)
    trend_score = math.tanh(strength * math.sqrt(mode.lookback) / config.trend_t_full)
    vol_score = min(1.0, sigma / (cost * config.vol_cost_multiple)) if cost > 0 else 1.0
    liq_score = min(1.0, liquidity / mode.min_bar_notional)
    w = mode.weights
    score = w.trend * trend_score + w.volatility * vol_score + w.liquidity * liq_score
    return ModeScore(
        name, timeframe, strength, sigma, liquidity, trend_score, vol_score, liq_score, score
    )


def select_mode(
    candles_by_timeframe: Mapping[str, pd.DataFrame],
    config: ModesConfig,
    costs: CostsConfig,
    regime: str | None = None,
) -> ModeChoice:
    """Score every mode on each of its timeframes (best one counts) and pick the highest, or
    the mode ``regime.mode_by_tier`` maps the volatility tier of ``regime`` (the last bar's
    label) to."""
    best_per_mode: list[ModeScore] = []
    for name, mode in config.modes.items():
        scored = [
            score_timeframe(name, mode, tf, candles_by_timeframe.get(tf), config, costs.round_trip)
            for tf in mode.timeframes
        ]
        usable = [s for s in scored if s.available]
        best_per_mode.append(max(usable, key=lambda s: s.score) if usable else scored[0])
    tier = None if regime is None else regime.rpartition("_")[2]
    mapped = next((m for t, m in config.regime.mode_by_tier.items() if t == tier), None)
    if mapped is not None:
        score = next(s for s in best_per_mode if s.mode == mapped)
        timeframe = score.timeframe if score.available else config.modes[mapped].timeframes[0]
        reason = f"volatility regime {regime} ({config.regime.source}) → modes.regime.mode_by_tier"
        return ModeChoice(mapped, timeframe, tuple(best_per_mode), reason)
    usable = [s for s in best_per_mode if s.available]
    if usable:
        best = max(usable, key=lambda s: s.score)
        reason = f"highest score {best.score:.3f} on {best.timeframe}"
        return ModeChoice(best.mode, best.timeframe, tuple(best_per_mode), reason)
    if config.default is None:
        notes = "; ".join(f"{s.mode}: {s.note}" for s in best_per_mode)
        raise DataError(f"no mode can be scored and no default mode is set ({notes})")
    fallback = config.modes[config.default].timeframes[0]
    reason = "no mode could be scored: configured default"
    return ModeChoice(config.default, fallback, tuple(best_per_mode), reason)


def candles_for_modes(
    candles: pd.DataFrame, timeframe: str, config: ModesConfig
) -> dict[str, pd.DataFrame]:
    """The candles resampled to every mode timeframe reachable from ``timeframe``."""
    base = timeframe_seconds(timeframe)
    out: dict[str, pd.DataFrame] = {}
    for mode in config.modes.values():
        for tf in mode.timeframes:
            seconds = timeframe_seconds(tf)
            if tf in out or seconds < base or seconds % base:
                continue
            out[tf] = candles if seconds == base else resample(candles, timeframe, tf)
    return out


def regime_labels(
    candles: pd.DataFrame, config: RegimeConfig, tiers: np.ndarray | None = None
) -> pd.Series:
    """Per-bar regime, causal: trend when |R² of log price| ≥ ``trend_r2``; volatility tier from
    the percentile of realised vol over ``vol_rank_window`` bars, or ``tiers`` when given (the
    HMM's, :mod:`aitrader.strategy.regimes`; ``""`` where unknown); ``unknown`` while warming
    up."""
    close = candles["close"].to_numpy(dtype=np.float64)
    r2 = trend_strength(close, config.trend_window)
    trend = np.where(np.abs(r2) >= config.trend_r2, "trend", "range")
    if tiers is None:
        rank = pct_rank(realized_vol(close, config.vol_window), config.vol_rank_window)
        tier = np.where(
            rank <= config.low_vol_pct,
            "low",
            np.where(rank >= config.high_vol_pct, "high", "normal"),
        )
        warm = max(config.trend_window - 1, config.vol_window + config.vol_rank_window - 1)
        known = np.isfinite(rank)
    else:
        tier = np.where(tiers == "", "normal", tiers).astype(str)
        warm, known = config.trend_window - 1, tiers != ""
    labels = np.char.add(np.char.add(trend.astype(str), "_"), tier.astype(str)).astype(object)
    labels[: min(warm, labels.size)] = UNKNOWN_REGIME
    labels[~np.isfinite(r2) | ~known] = UNKNOWN_REGIME
    return pd.Series(labels, index=candles.index, name="regime", dtype=object)


def mode_signal_config(signal: SignalConfig, mode: ModeConfig) -> SignalConfig:
    """The signal settings with the mode's thresholds, EV margin and bands applied."""
    changes: dict[str, object] = mode.signal.model_dump(exclude_none=True)
    if mode.bands is not None:
        changes["bands"] = mode.bands
    return SignalConfig.model_validate({**signal.model_dump(), **changes})


def mode_risk_config(risk: RiskConfig, mode: ModeConfig) -> RiskConfig:
    """The risk settings with the mode's risk %, leverage and trades-per-day limits applied."""
    sizing = risk.sizing.model_dump()
    limits = risk.limits.model_dump()
    if mode.risk_pct is not None:
        sizing["risk_pct"] = mode.risk_pct
    if mode.max_leverage is not None:
        sizing["max_leverage"] = mode.max_leverage
    if mode.max_trades_per_day is not None:
        limits["max_trades_per_day"] = mode.max_trades_per_day
    return RiskConfig.model_validate({**risk.model_dump(), "sizing": sizing, "limits": limits})
