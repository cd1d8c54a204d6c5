"""Liquidity and spread proxies estimated from OHLCV alone (no order book needed)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aitrader.features._util import as_f64, log_returns, rolling_mean, rolling_sum, safe_ratio

_CS_K = 3.0 - 2.0 * math.sqrt(2.0)


@njit(cache=True)
def _rolling_cov(x: np.ndarray, y: np.ndarray, window: int, first: int) -> np.ndarray:
    """Columns: cov(x, y) and var(y) (population) over trailing windows, from row ``first``."""
    n = x.shape[0]
    out = np.full((n, 2), np.nan)
    for t in range(first, n):
        start = t - window + 1
        mx = my = 0.0
        for i in range(start, t + 1):
            mx += x[i]
            my += y[i]
        mx /= window
        my /= window
        cov = var = 0.0
        same = True
        for i in range(start, t + 1):
            dy = y[i] - my
            cov += (x[i] - mx) * dy
            var += dy * dy
            same = same and y[i] == y[start]
        out[t, 0] = cov / window
        out[t, 1] = 0.0 if same else var / window
    return out


def amihud(close: np.ndarray, volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Amihud illiquidity over the trailing window as a ratio of sums:
    ``Σ|log return| / Σ(close · volume)`` (price impact per unit of traded value; NaN when the
    window traded nothing). Warm-up: ``window``.
    """
    r = np.abs(log_returns(close))
    dollar = as_f64(close) * as_f64(volume)
    dollar_sum = rolling_sum(np.where(np.isnan(r), np.nan, dollar), window)
    return safe_ratio(rolling_sum(r, window), dollar_sum, np.nan)


def roll_spread(close: np.ndarray, window: int = 20) -> np.ndarray:
    """Roll (1984) effective spread as a fraction of price: ``2·sqrt(−cov(r_t, r_{t−1}))`` over
    the trailing window, 0 where the serial covariance is not negative. Warm-up: ``window + 1``.
    """
    r = log_returns(close)
    lagged = np.full_like(r, np.nan)
    lagged[1:] = r[:-1]
    cov = _rolling_cov(r, lagged, int(window), int(window) + 1)[:, 0]
    return np.where(np.isnan(cov), np.nan, 2.0 * np.sqrt(np.maximum(-cov, 0.0)))


def corwin_schultz(high: np.ndarray, low: np.ndarray, window: int = 20) -> np.ndarray:
    """Corwin–Schultz (2012) high–low spread estimator from each pair of consecutive bars
    (negative estimates set to 0), averaged over the trailing window. Warm-up: ``window``.
    """
    h, lo = as_f64(high), as_f64(low)
    hl2 = np.log(h / lo) ** 2
    spread = np.full_like(h, np.nan)
    beta = hl2[1:] + hl2[:-1]
    gamma = np.log(np.maximum(h[1:], h[:-1]) / np.minimum(lo[1:], lo[:-1])) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
    e = np.exp(alpha)
    spread[1:] = np.maximum(2.0 * (e - 1.0) / (1.0 + e), 0.0)
    return rolling_mean(spread, window)


def kyle_lambda(close: np.ndarray, volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Kyle's lambda proxy: slope of log returns on signed root traded value
    ``sign(r_t)·sqrt(close_t · volume_t)`` over the trailing window (0 when that regressor is
    constant). Warm-up: ``window``.
    """
    r = log_returns(close)
    signed = np.sign(r) * np.sqrt(as_f64(close) * as_f64(volume))
    stats = _rolling_cov(r, signed, int(window), int(window))
    return safe_ratio(stats[:, 0], stats[:, 1], 0.0)
