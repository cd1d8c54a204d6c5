"""Small array helpers shared by the feature modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit


def as_f64(values: np.ndarray) -> np.ndarray:
    """A contiguous float64 view of ``values`` (no copy when it already is one)."""
    return np.ascontiguousarray(values, dtype=np.float64)


def safe_ratio(num: np.ndarray, den: np.ndarray, neutral: float) -> np.ndarray:
    """``num / den`` where ``den != 0``; ``neutral`` where ``den == 0``; NaN stays NaN."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num / den, dtype=np.float64)
    zero = np.broadcast_to(den == 0, out.shape)
    if zero.any():
        out[zero & ~np.isnan(np.broadcast_to(num, out.shape))] = neutral
    return out


def log_returns(close: np.ndarray) -> np.ndarray:
    """``ln(close[t] / close[t-1])``; the first value is NaN. Warm-up: 1."""
    c = as_f64(close)
    out = np.empty_like(c)
    if c.size:
        out[0] = np.nan
        out[1:] = np.log(c[1:] / c[:-1])
    return out


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling mean (pandas' compensated online sum); NaN until ``window`` values are present."""
    return np.asarray(pd.Series(values).rolling(window).mean().to_numpy(dtype=np.float64))


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling population std; exactly 0 on a window of identical values."""
    out = pd.Series(values).rolling(window).std(ddof=0).to_numpy(dtype=np.float64)
    return np.asarray(out)


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling sum; NaN until ``window`` values are present."""
    return np.asarray(pd.Series(values).rolling(window).sum().to_numpy(dtype=np.float64))


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling maximum; NaN until ``window`` values are present."""
    return np.asarray(pd.Series(values).rolling(window).max().to_numpy(dtype=np.float64))


@njit(cache=True)
def all_equal(x: np.ndarray, start: int, stop: int) -> bool:
    """Whether ``x[start:stop]`` holds a single repeated value (a degenerate window)."""
    first = x[start]
    for i in range(start + 1, stop):  # noqa: SIM110 (numba: plain loop)
        if x[i] != first:
            return False
    return True


def nan_prefix(values: np.ndarray, count: int) -> np.ndarray:
    """``values`` with its first ``count`` entries set to NaN (declared warm-up made explicit)."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[: max(0, min(count, out.size))] = np.nan
    return out
