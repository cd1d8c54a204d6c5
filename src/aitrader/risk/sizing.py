"""Position sizing: fixed fractional, fractional Kelly and volatility targeting.

:func:`position_size` is the one sizing rule: the RiskManager applies it to every entry (as one
more cap next to the limits) when ``risk.sizing.method`` is not ``target``. The pure functions
are its parts; :class:`VolatilityTracker` keeps the closes a vol-target size needs, bar by bar.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

import numpy as np

from aitrader.errors import ConfigError
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


KELLY_MIN_TRADES = 5
"""Closed trades needed before Kelly sizing applies (fixed fractional sizes until then)."""


def kelly_from_trades(trade_returns: np.ndarray, config: SizingConfig) -> float:
    """Fraction of equity to commit from recent trades' win rate and payoff (capped Kelly)."""
    if np.asarray(trade_returns).size < KELLY_MIN_TRADES:
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
    """Quantity (base units, unsigned) by the configured method, capped at ``max_leverage``.

    ``target`` sizes nothing here (the strategy's fraction is the size): it returns the
    leverage cap. Kelly with fewer than :data:`KELLY_MIN_TRADES` trades sizes fixed fractional.
    """
    if entry <= 0 or equity <= 0:
        return 0.0
    history = np.empty(0) if trade_returns is None else np.asarray(trade_returns)
    if config.method == "target":
        qty = math.inf
    elif config.method == "fixed_fractional" or (
        config.method == "kelly" and history.size < KELLY_MIN_TRADES
    ):
        qty = fixed_fractional(equity, config.risk_pct, entry, stop)
    elif config.method == "kelly":
        qty = kelly_from_trades(history, config) * equity / entry
    else:
        exposure = vol_target_fraction(config.target_vol, math.nan if vol is None else vol, 1e9)
        qty = exposure * equity / entry
    return float(min(qty, config.max_leverage * equity / entry))


def sizing_label(config: SizingConfig, trades: int) -> str:
    """How the RiskManager names the sizing cap in its decisions (the binding reason)."""
    if config.method == "kelly" and trades >= KELLY_MIN_TRADES:
        return f"kelly sizing (×{config.kelly_fraction:g}, last {config.kelly_window} trades)"
    if config.method == "vol_target":
        return f"vol-target sizing {config.target_vol:.2%} per bar"
    return f"fixed-fractional sizing {config.risk_pct:.2%} to the stop"


class VolatilityTracker:
    """Realised volatility per symbol from the closes seen bar by bar (``vol_window`` returns,
    :func:`forecast_vol`'s realised estimate); NaN until the window is full."""

    def __init__(self, config: SizingConfig) -> None:
        if config.vol_method != "realised":
            raise ConfigError(
                "risk.sizing.vol_method must be 'realised' for trading: the GARCH forecast "
                "refits per call and is for research sizing only"
            )
        self.config = config
        self._closes: dict[str, deque[float]] = {}

    def update(self, closes: Mapping[str, float]) -> None:
        for symbol, close in closes.items():
            buffer = self._closes.get(symbol)
            if buffer is None:
                buffer = self._closes[symbol] = deque(maxlen=self.config.vol_window + 1)
            buffer.append(float(close))

    def vol(self, symbol: str) -> float:
        buffer = self._closes.get(symbol, ())
        if len(buffer) <= self.config.vol_window:
            return math.nan
        return float(forecast_vol(np.fromiter(buffer, np.float64), self.config)[-1])
