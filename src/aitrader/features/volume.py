"""Volume features: rolling and session VWAP, on-balance volume, volume z-score, anchored VWAP.

VWAPs use the typical price ``(high + low + close) / 3``. Where the volume in the averaging span
is zero, a VWAP falls back to the plain mean of the typical price over the same span.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.features._util import as_f64, rolling_mean, rolling_std, rolling_sum, safe_ratio
from aitrader.features.levels import confirmed_swings

_DAY_NS = 86_400 * 1_000_000_000


def typical_price(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """``(high + low + close) / 3``. Warm-up: 0."""
    return (as_f64(high) + as_f64(low) + as_f64(close)) / 3.0


def rolling_vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int = 20
) -> np.ndarray:
    """Volume-weighted average typical price over the last ``window`` bars.

    Warm-up: ``window - 1``.
    """
    tp = typical_price(high, low, close)
    v = as_f64(volume)
    pv = rolling_sum(tp * v, window)
    vol = rolling_sum(v, window)
    out = safe_ratio(pv, vol, np.nan)
    flat = vol == 0
    out[flat] = rolling_mean(tp, window)[flat]
    return out


def session_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    ts: np.ndarray,
    session_seconds: int = 86_400,
) -> np.ndarray:
    """VWAP since the start of the current session (UTC day by default, from bar open times
    ``ts`` in nanoseconds). Warm-up: 0.
    """
    session = np.asarray(ts, dtype=np.int64) // np.int64(session_seconds * 1_000_000_000)
    starts = np.r_[True, session[1:] != session[:-1]] if session.size else session.astype(bool)
    anchor = np.maximum.accumulate(np.where(starts, np.arange(session.size), 0))
    tp = typical_price(high, low, close)
    return np.asarray(_anchored_vwap(tp, as_f64(volume), anchor.astype(np.int64)))


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Classic cumulative on-balance volume (starts at 0 on the first bar). Its level depends on
    where the series starts; prefer :func:`rolling_obv` as a model input. Warm-up: 0.
    """
    c = as_f64(close)
    signed = np.zeros_like(c)
    signed[1:] = np.sign(c[1:] - c[:-1]) * as_f64(volume)[1:]
    return np.cumsum(signed)


def rolling_obv(
    close: np.ndarray, volume: np.ndarray, window: int = 20, relative: bool = True
) -> np.ndarray:
    """On-balance volume over the last ``window`` bars: ``Σ sign(Δclose) · volume``.

    With ``relative`` it is divided by the window's total volume, giving a value in [−1, 1]
    (0 on a window without volume). Independent of where the series starts. Warm-up: ``window``.
    """
    c = as_f64(close)
    v = as_f64(volume)
    signed = np.full_like(c, np.nan)
    signed[1:] = np.sign(c[1:] - c[:-1]) * v[1:]
    total = rolling_sum(signed, window)
    if not relative:
        return total
    vol = rolling_sum(np.where(np.isnan(signed), np.nan, v), window)
    return safe_ratio(total, vol, 0.0)


def volume_zscore(volume: np.ndarray, window: int = 20) -> np.ndarray:
    """``(volume - rolling mean) / rolling std`` over ``window`` bars (0 on a constant window).

    Warm-up: ``window - 1``.
    """
    v = as_f64(volume)
    return safe_ratio(v - rolling_mean(v, window), rolling_std(v, window), 0.0)


@njit(cache=True)
def _anchored_vwap(tp: np.ndarray, v: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    n = tp.shape[0]
    out = np.full(n, np.nan)
    pv = vol = tps = 0.0
    count = 0
    for t in range(n):
        a = anchor[t]
        if a < 0:
            continue
        if t == 0 or a != anchor[t - 1]:
            pv = vol = tps = 0.0
            count = 0
            for i in range(a, t):
                pv += tp[i] * v[i]
                vol += v[i]
                tps += tp[i]
                count += 1
        pv += tp[t] * v[t]
        vol += v[t]
        tps += tp[t]
        count += 1
        out[t] = pv / vol if vol > 0 else tps / count
    return out


def anchored_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    left: int = 5,
    right: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """VWAP anchored at the most recent *confirmed* swing high and swing low (see
    :mod:`aitrader.features.levels`): the average from the pivot bar through the current bar.

    Returns (anchored at the swing high, anchored at the swing low). Warm-up: at least
    ``left + right`` (NaN until the first pivot of each kind is confirmed).
    """
    tp = typical_price(high, low, close)
    v = as_f64(volume)
    hi, lo = confirmed_swings(high, low, left, right)
    return np.asarray(_anchored_vwap(tp, v, hi)), np.asarray(_anchored_vwap(tp, v, lo))
