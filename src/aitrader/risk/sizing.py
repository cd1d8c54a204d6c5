"""Position sizing: fixed fractional, fractional Kelly and volatility targeting (pure functions).

Every function returns a size before limits; the RiskManager caps it afterwards.
"""

from __future__ import annotations

import math

import numpy as np

from aitrader.features.volatility import garch_vol, realized_vol
from aitrader.risk.config import SizingConfig


def fixed_fractional(equity: float, risk_pct: float, entry: float, stop: float) -> float:
    """Quantity losing ``risk_pct`` of equity at the stop: ``equity·risk_pct / |entry−stop|``."""
    distance = abs(entry - stop)
    if equity <= 0 or distance == 0 or not math.isfinite(distance):
        return 0.0
    return equity * risk_pct / distance


def kelly_fraction(
    win_rate: float, payoff: float, fraction: float = 0.5, cap: float = 0.25
) -> float:
    """Fractional Kelly ``fraction·(p − (1−p)/b)`` clipped to ``[0, cap]`` (b: win/loss ratio)."""
    if payoff <= 0 or not 0 <= win_rate <= 1:
        return 0.0
    full = win_rate - (1.0 - win_rate) / payoff
    return float(min(cap, max(0.0, fraction * full)))


def win_rate_and_payoff(trade_returns: np.ndarray, window: int) -> tuple[float, float]:
    """Win rate and payoff ratio (mean win / mean loss) of the last ``window`` trades."""
    r = np.asarray(trade_returns, dtype=np.float64)[-window:]
    r = r[np.isfinite(r)]
    if r.size == 0:
        return 0.0, 0.0
    wins, losses = r[r > 0], r[r < 0]
    if losses.size == 0:
        return float(wins.size / r.size), math.inf if wins.size else 0.0
    payoff = float(wins.mean() / -losses.mean()) if wins.size else 0.0
    return float(wins.size / r.size), payoff


def kelly_from_trades(trade_returns: np.ndarray, config: SizingConfig) -> float:
    """Fraction of equity to commit from recent trades' win rate and payoff (capped Kelly)."""
    if np.asarray(trade_returns).size < 5:
        return 0.0
    p, b = win_rate_and_payoff(trade_returns, config.kelly_window)
    if math.isinf(b):
        return config.kelly_cap
    return kelly_fraction(p, b, config.kelly_fraction, config.kelly_cap)


def vol_target_fraction(target_vol: float, forecast_vol: float, max_leverage: float) -> float:
    """Exposure (notional / equity) that makes the position's volatility ``target_vol``."""
    if not math.isfinite(forecast_vol) or forecast_vol <= 0:
        return 0.0
    return float(min(max_leverage, target_vol / forecast_vol))


def forecast_vol(close: np.ndarray, config: SizingConfig) -> np.ndarray:
    """Per-bar volatility forecast: realised (trailing RMS of log returns) or GARCH(1,1)."""
    if config.vol_method == "garch":
        return garch_vol(close)
    return realized_vol(close, config.vol_window)


def position_size(
    equity: float,
    entry: float,
    stop: float,
    config: SizingConfig,
    trade_returns: np.ndarray | None = None,
    vol: float | None = None,
) -> float:
    """Quantity (base units, unsigned) by the configured method, capped at ``max_leverage``."""
    if entry <= 0 or equity <= 0:
        return 0.0
    if config.method == "fixed_fractional":
        qty = fixed_fractional(equity, config.risk_pct, entry, stop)
    elif config.method == "kelly":
        history = np.empty(0) if trade_returns is None else trade_returns
        qty = kelly_from_trades(history, config) * equity / entry
    else:
        exposure = vol_target_fraction(config.target_vol, math.nan if vol is None else vol, 1e9)
        qty = exposure * equity / entry
    return float(min(qty, config.max_leverage * equity / entry))
