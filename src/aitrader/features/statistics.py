"""Rolling statistics of prices and log returns, computed window by window (numba).

A degenerate window (all values identical: no dispersion) yields the neutral value of the
statistic — 0 for z-scores, moments, correlations, Sharpe and trend strength, 0.5 for the Hurst
exponent — rather than NaN or an artefact of floating-point round-off.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aitrader.features._util import (
    all_equal,
    as_f64,
    log_returns,
    rolling_max,
    rolling_mean,
    rolling_std,
    safe_ratio,
)


@njit(cache=True)
def _moments(r: np.ndarray, window: int) -> np.ndarray:
    n = r.shape[0]
    out = np.full((n, 4), np.nan)
    for t in range(window, n):
        start = t - window + 1
        mean = 0.0
        for i in range(start, t + 1):
            mean += r[i]
        mean /= window
        m2 = m3 = m4 = 0.0
        for i in range(start, t + 1):
            d = r[i] - mean
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
        m2, m3, m4 = m2 / window, m3 / window, m4 / window
        out[t, 0] = mean
        out[t, 1] = math.sqrt(m2)
        if all_equal(r, start, t + 1) or m2 == 0.0:
            out[t, 1] = 0.0
            out[t, 2] = 0.0
            out[t, 3] = 0.0
        else:
            out[t, 2] = m3 / m2**1.5
            out[t, 3] = m4 / (m2 * m2) - 3.0
    return out


def return_moments(
    close: np.ndarray, window: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rolling mean, std, skewness and excess kurtosis (population moments) of log returns.

    Warm-up: ``window``.
    """
    out = _moments(log_returns(close), int(window))
    return out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy(), out[:, 3].copy()


def zscore(values: np.ndarray, window: int = 20) -> np.ndarray:
    """``(x - rolling mean) / rolling std`` (population) over ``window`` bars.

    Warm-up: ``window - 1``.
    """
    x = as_f64(values)
    return safe_ratio(x - rolling_mean(x, window), rolling_std(x, window), 0.0)


@njit(cache=True)
def _pct_rank(x: np.ndarray, window: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        below = 0
        for i in range(t - window + 1, t + 1):
            if x[i] <= x[t]:
                below += 1
        out[t] = below / window
    return out


def pct_rank(values: np.ndarray, window: int = 100) -> np.ndarray:
    """Share of the last ``window`` values (current included) that are ≤ the current value,
    in (0, 1]. Warm-up: ``window - 1``.
    """
    return np.asarray(_pct_rank(as_f64(values), int(window)))


@njit(cache=True)
def _window_sums(r: np.ndarray, start: int, t: int, lags: np.ndarray, c: np.ndarray) -> None:
    """Exact cross-product sums ``c[k-1] = Σ r[i]·r[i-k]`` for i in [start + k, t]."""
    for j in range(lags.shape[0]):
        k = lags[j]
        acc = 0.0
        for i in range(start + k, t + 1):
            acc += r[i] * r[i - k]
        c[j] = acc


@njit(cache=True)
def _autocorr(r: np.ndarray, window: int, max_lag: int) -> np.ndarray:
    """Running sums updated bar by bar and recomputed exactly every ``window`` bars (a schedule
    anchored on the first valid row, so values never depend on later bars).
    """
    n = r.shape[0]
    out = np.full((n, max_lag), np.nan)
    lags = np.arange(1, max_lag + 1)
    c = np.zeros(max_lag)
    s = s2 = 0.0
    changes = 0
    for t in range(window, n):
        start = t - window + 1
        if (t - window) % window == 0:
            s = s2 = 0.0
            changes = 0
            for i in range(start, t + 1):
                s += r[i]
                s2 += r[i] * r[i]
                if i > start and r[i] != r[i - 1]:
                    changes += 1
            _window_sums(r, start, t, lags, c)
        else:
            old = r[start - 1]
            s += r[t] - old
            s2 += r[t] * r[t] - old * old
            changes += int(r[t] != r[t - 1]) - int(r[start] != old)
            for k in range(1, max_lag + 1):
                c[k - 1] += r[t] * r[t - k] - r[start - 1 + k] * old
        _acf_row(r, t, window, s, s2, changes, c, out[t])
    return out


@njit(cache=True)
def _acf_row(
    r: np.ndarray,
    t: int,
    window: int,
    s: float,
    s2: float,
    changes: int,
    c: np.ndarray,
    row: np.ndarray,
) -> None:
    start = t - window + 1
    mean = s / window
    denom = s2 - window * mean * mean
    if changes == 0 or denom <= 1e-12 * s2:
        row[:] = 0.0
        return
    head = tail = 0.0
    for k in range(1, row.shape[0] + 1):
        head += r[start + k - 1]
        tail += r[t - k + 1]
        num = c[k - 1] - mean * ((s - head) + (s - tail)) + (window - k) * mean * mean
        row[k - 1] = min(1.0, max(-1.0, num / denom))


def autocorr(close: np.ndarray, window: int = 100, max_lag: int = 10) -> np.ndarray:
    """Sample autocorrelation of log returns at lags 1..``max_lag`` within each trailing window
    (the standard ACF: lagged cross-products over the window's total sum of squares, in [−1, 1]).

    Shape ``(n, max_lag)``. Warm-up: ``window``.
    """
    if max_lag >= window:
        raise ValueError("max_lag must be smaller than window")
    return np.asarray(_autocorr(log_returns(close), int(window), int(max_lag)))


@njit(cache=True)
def _diff_sums(x: np.ndarray, start: int, t: int, lags: np.ndarray, s: np.ndarray) -> None:
    """Exact sums of ``d = x[i] - x[i-k]`` (column 0) and ``d²`` (column 1), i in [start+k, t]."""
    for j in range(lags.shape[0]):
        k = lags[j]
        s[j, 0] = 0.0
        s[j, 1] = 0.0
        for i in range(start + k, t + 1):
            d = x[i] - x[i - k]
            s[j, 0] += d
            s[j, 1] += d * d


@njit(cache=True)
def _slope(xs: np.ndarray, ys: np.ndarray, used: int) -> float:
    mx = xs[:used].mean()
    my = ys[:used].mean()
    return float(((xs[:used] - mx) * (ys[:used] - my)).sum() / ((xs[:used] - mx) ** 2).sum())


@njit(cache=True)
def _hurst(logp: np.ndarray, window: int, lags: np.ndarray) -> np.ndarray:
    """Running sums per lag, recomputed exactly every ``window`` bars (anchored on the first
    valid row); a window without any price change gives the neutral 0.5.
    """
    n = logp.shape[0]
    m = lags.shape[0]
    out = np.full(n, np.nan)
    sums = np.zeros((m, 2))
    xs = np.empty(m)
    ys = np.empty(m)
    moves = 0
    for t in range(window - 1, n):
        start = t - window + 1
        if (t - window + 1) % window == 0:
            _diff_sums(logp, start, t, lags, sums)
            moves = 0
            for i in range(start + 1, t + 1):
                moves += int(logp[i] != logp[i - 1])
        else:
            moves += int(logp[t] != logp[t - 1]) - int(logp[start] != logp[start - 1])
            for j in range(m):
                k = lags[j]
                new = logp[t] - logp[t - k]
                old = logp[start - 1 + k] - logp[start - 1]
                sums[j, 0] += new - old
                sums[j, 1] += new * new - old * old
        used = 0
        for j in range(m if moves > 0 else 0):
            mean_square = sums[j, 1] / (window - lags[j])
            if mean_square > 0.0:
                xs[used] = math.log(lags[j])
                ys[used] = 0.5 * math.log(mean_square)
                used += 1
        out[t] = _slope(xs, ys, used) if used >= 2 else 0.5
    return out


def hurst(close: np.ndarray, window: int = 100, max_lag: int = 16) -> np.ndarray:
    """Hurst exponent: slope of log RMS(``lag``-difference of log price) against log lag (lags
    1, 2, 4, … ≤ ``max_lag``) in each trailing window. Using the raw RMS (no demeaning) keeps a
    driftless random walk at ~0.5; persistent trends push it towards 1, mean reversion below
    0.5. Warm-up: ``window - 1``.
    """
    lags = np.array([2**k for k in range(16) if 2**k <= max_lag], dtype=np.int64)
    if lags.shape[0] < 2 or max_lag >= window // 2:
        raise ValueError("need max_lag >= 2 and max_lag < window / 2")
    return np.asarray(_hurst(np.log(as_f64(close)), int(window), lags))


def rolling_sharpe(close: np.ndarray, window: int = 100) -> np.ndarray:
    """Mean over std of log returns in the trailing window (per bar, not annualised).

    Warm-up: ``window``.
    """
    r = log_returns(close)
    return safe_ratio(rolling_mean(r, window), rolling_std(r, window), 0.0)


def drawdown(close: np.ndarray, window: int = 100) -> np.ndarray:
    """``close / max(close over the last window bars) - 1`` (≤ 0). Warm-up: ``window - 1``."""
    c = as_f64(close)
    return c / rolling_max(c, window) - 1.0


@njit(cache=True)
def _trend_strength(y: np.ndarray, window: int) -> np.ndarray:
    n = y.shape[0]
    out = np.full(n, np.nan)
    xm = (window - 1) / 2.0
    sxx = 0.0
    for i in range(window):
        sxx += (i - xm) ** 2
    for t in range(window - 1, n):
        start = t - window + 1
        ym = 0.0
        for i in range(start, t + 1):
            ym += y[i]
        ym /= window
        sxy = syy = 0.0
        for i in range(start, t + 1):
            d = y[i] - ym
            sxy += (i - start - xm) * d
            syy += d * d
        if syy == 0.0 or all_equal(y, start, t + 1):
            out[t] = 0.0
        else:
            r2 = min(1.0, sxy * sxy / (sxx * syy))
            out[t] = r2 if sxy > 0 else -r2
    return out


def trend_strength(close: np.ndarray, window: int = 20) -> np.ndarray:
    """Signed R² of a straight-line fit to log price over the trailing window, in [−1, 1]:
    the sign of the slope times how much of the movement the line explains.

    Warm-up: ``window - 1``.
    """
    return np.asarray(_trend_strength(np.log(as_f64(close)), int(window)))


def lagged(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, lags: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(returns, ranges)``, each ``(n, lags)``: column ``k`` holds the log return
    ``ln(C[t-k] / C[t-k-1])`` and the log range ``ln(H[t-k] / L[t-k])`` of bar ``t - k``
    (NaN before the series starts). Warm-up: ``lags``."""
    r = log_returns(close)
    hl = np.log(as_f64(high) / as_f64(low))
    n = r.shape[0]
    returns = np.full((n, lags), np.nan)
    ranges = np.full((n, lags), np.nan)
    for k in range(min(lags, n)):
        returns[k:, k] = r[: n - k]
        ranges[k:, k] = hl[: n - k]
    return returns, ranges
