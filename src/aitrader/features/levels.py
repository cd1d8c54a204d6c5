"""Confirmed swing pivots and Fibonacci levels drawn from the last confirmed swing.

A bar ``p`` is a swing high when its high is strictly above the ``left`` highs before it and at
least as high as the ``right`` highs after it (swing lows mirror this). The pivot is only known
once its ``right`` following bars have closed, so at bar ``t`` only pivots with
``p + right <= t`` are used: nothing here looks past the current bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.features._util import as_f64, safe_ratio

RETRACEMENTS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)
EXTENSIONS: tuple[float, ...] = (1.272, 1.618)


@njit(cache=True)
def _is_pivot(x: np.ndarray, p: int, left: int, right: int, sign: float) -> bool:
    centre = sign * x[p]
    for i in range(p - left, p):
        if sign * x[i] >= centre:
            return False
    for i in range(p + 1, p + right + 1):  # noqa: SIM110 (numba: plain loop)
        if sign * x[i] > centre:
            return False
    return True


@njit(cache=True)
def _last_pivots(
    high: np.ndarray, low: np.ndarray, left: int, right: int
) -> tuple[np.ndarray, np.ndarray]:
    n = high.shape[0]
    last_high = np.full(n, -1, dtype=np.int64)
    last_low = np.full(n, -1, dtype=np.int64)
    cur_high, cur_low = -1, -1
    for t in range(n):
        p = t - right
        if p - left >= 0:
            if _is_pivot(high, p, left, right, 1.0):
                cur_high = p
            if _is_pivot(low, p, left, right, -1.0):
                cur_low = p
        last_high[t] = cur_high
        last_low[t] = cur_low
    return last_high, last_low


def confirmed_swings(
    high: np.ndarray, low: np.ndarray, left: int = 5, right: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most recent confirmed swing high and swing low at each bar (−1 if none yet).

    Warm-up: at least ``left + right`` (data-dependent: until the first pivot is confirmed).
    """
    if left < 1 or right < 1:
        raise ValueError("left and right must be at least 1")
    hi, lo = _last_pivots(as_f64(high), as_f64(low), int(left), int(right))
    return np.asarray(hi), np.asarray(lo)


def fibonacci_levels(
    high: np.ndarray,
    low: np.ndarray,
    left: int = 5,
    right: int = 5,
    ratios: tuple[float, ...] = RETRACEMENTS + EXTENSIONS,
    swings: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fibonacci levels of the last confirmed swing, shape ``(n, len(ratios))``, and its direction.

    With ``S`` the older pivot price and ``E`` the newer one (``D = E - S``), a retracement
    ratio ``r < 1`` gives ``E - r·D`` and an extension ratio ``e ≥ 1`` gives ``S + e·D``.
    Direction is +1 for a low→high swing, −1 for high→low. Warm-up: as :func:`confirmed_swings`
    (NaN until both a swing high and a swing low are confirmed). ``swings``: the
    :func:`confirmed_swings` of the same bars, when already computed.
    """
    h, lo_ = as_f64(high), as_f64(low)
    hi_idx, lo_idx = confirmed_swings(h, lo_, left, right) if swings is None else swings
    ready = (hi_idx >= 0) & (lo_idx >= 0)
    peak = np.where(ready, h[np.maximum(hi_idx, 0)], np.nan)
    trough = np.where(ready, lo_[np.maximum(lo_idx, 0)], np.nan)
    up = hi_idx > lo_idx
    start = np.where(up, trough, peak)
    end = np.where(up, peak, trough)
    span = end - start
    levels = np.empty((h.shape[0], len(ratios)))
    for j, ratio in enumerate(ratios):
        levels[:, j] = end - ratio * span if ratio < 1.0 else start + ratio * span
    direction = np.where(ready, np.where(up, 1.0, -1.0), np.nan)
    return levels, direction


def level_distance(close: np.ndarray, levels: np.ndarray, atr: np.ndarray) -> np.ndarray:
    """``(close - level) / atr`` for each level column (0 where ATR is 0). Warm-up: that of the
    levels and of the ATR, whichever is longer.
    """
    c = as_f64(close)[:, None]
    return safe_ratio(c - levels, as_f64(atr)[:, None], 0.0)
