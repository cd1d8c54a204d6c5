"""Trend, momentum and band indicators: thin wrappers over TA-Lib (arrays in, arrays out).

Warm-up ("lookback") is the number of leading NaN values; it equals TA-Lib's own lookback with
the default (zero) unstable periods. EMA-seeded indicators (EMA, MACD, RSI, ATR, ADX) depend on
where the series starts, but a value at bar t never depends on bars after t, so truncating the end
of a series leaves every earlier value unchanged (checked by the causality harness).
"""

from __future__ import annotations

import numpy as np
import talib

from aitrader.features._util import as_f64, safe_ratio


def sma(close: np.ndarray, period: int = 20) -> np.ndarray:
    """Simple moving average. Warm-up: ``period - 1``."""
    return np.asarray(talib.SMA(as_f64(close), timeperiod=period))


def ema(close: np.ndarray, period: int = 20) -> np.ndarray:
    """Exponential moving average (seeded with the SMA of the first ``period`` values).

    Warm-up: ``period - 1``.
    """
    return np.asarray(talib.EMA(as_f64(close), timeperiod=period))


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram. Warm-up: ``max(fast, slow) + signal - 2``."""
    line, sig, hist = talib.MACD(
        as_f64(close), fastperiod=fast, slowperiod=slow, signalperiod=signal
    )
    return np.asarray(line), np.asarray(sig), np.asarray(hist)


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average directional index, +DI and −DI (Wilder). Warm-up: ``2 * period - 1`` (ADX);
    the DIs are valid from ``period`` on but are reported over the same rows.
    """
    h, lo, c = as_f64(high), as_f64(low), as_f64(close)
    return (
        np.asarray(talib.ADX(h, lo, c, timeperiod=period)),
        np.asarray(talib.PLUS_DI(h, lo, c, timeperiod=period)),
        np.asarray(talib.MINUS_DI(h, lo, c, timeperiod=period)),
    )


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Relative strength index (Wilder), in [0, 100]. Warm-up: ``period``."""
    return np.asarray(talib.RSI(as_f64(close), timeperiod=period))


def stoch(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    k: int = 14,
    smooth_k: int = 3,
    d: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic oscillator %K (smoothed by an SMA of ``smooth_k``) and %D (SMA of %K).

    In [0, 100]. Warm-up: ``k + smooth_k + d - 3``.
    """
    slowk, slowd = talib.STOCH(
        as_f64(high),
        as_f64(low),
        as_f64(close),
        fastk_period=k,
        slowk_period=smooth_k,
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=d,
        slowd_matype=talib.MA_Type.SMA,
    )
    return np.asarray(slowk), np.asarray(slowd)


def roc(close: np.ndarray, period: int = 10) -> np.ndarray:
    """Rate of change in percent, ``100 * (close / close[t - period] - 1)``. Warm-up: ``period``."""
    return np.asarray(talib.ROC(as_f64(close), timeperiod=period))


def willr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Williams %R, in [−100, 0]. Warm-up: ``period - 1``."""
    return np.asarray(talib.WILLR(as_f64(high), as_f64(low), as_f64(close), timeperiod=period))


def bbands(
    close: np.ndarray, period: int = 20, nbdev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (SMA ± ``nbdev`` population std): upper, middle, lower.

    Warm-up: ``period - 1``.
    """
    upper, middle, lower = talib.BBANDS(
        as_f64(close), timeperiod=period, nbdevup=nbdev, nbdevdn=nbdev
    )
    return np.asarray(upper), np.asarray(middle), np.asarray(lower)


def percent_b(close: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Bollinger %B ``(close - lower) / (upper - lower)``; 0.5 when the bands collapse on a flat
    window. Warm-up: that of the bands.
    """
    return safe_ratio(as_f64(close) - lower, upper - lower, 0.5)


def bandwidth(upper: np.ndarray, middle: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Bollinger bandwidth ``(upper - lower) / middle``. Warm-up: that of the bands."""
    return safe_ratio(upper - lower, middle, 0.0)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range ``max(high, prev close) - min(low, prev close)``. Warm-up: 1."""
    return np.asarray(talib.TRANGE(as_f64(high), as_f64(low), as_f64(close)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Average true range (Wilder smoothing, seeded with the mean of the first ``period`` true
    ranges); never negative. Warm-up: ``period``.
    """
    return np.asarray(talib.ATR(as_f64(high), as_f64(low), as_f64(close), timeperiod=period))


def keltner(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int = 20,
    atr_period: int = 10,
    mult: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keltner channel: EMA(close, ``period``) ± ``mult`` × ATR(``atr_period``).

    Returns upper, middle, lower. Warm-up: ``max(period - 1, atr_period)``.
    """
    middle = ema(close, period)
    band = mult * atr(high, low, close, atr_period)
    return middle + band, middle, middle - band
