"""Baseline strategies as target arrays: buy-and-hold and an SMA crossover.

Tie rule of the crossover: long while fast SMA > slow SMA (strictly); an exact tie is flat.
Before the slow SMA exists the target is NaN (no decision).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.errors import ConfigError


@njit(cache=True)
def sma(close: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; NaN for the first ``window - 1`` bars."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    for i in range(n):
        total += close[i]
        if i >= window:
            total -= close[i - window]
        if i >= window - 1:
            out[i] = total / window
    return out


@njit(cache=True)
def crossover_targets(fast: np.ndarray, slow: np.ndarray, short: bool) -> np.ndarray:
    """1 while fast > slow, else 0 (or -1 with ``short``); NaN while either is missing."""
    out = np.full(fast.shape[0], np.nan)
    low = -1.0 if short else 0.0
    for i in range(fast.shape[0]):
        if fast[i] == fast[i] and slow[i] == slow[i]:
            out[i] = 1.0 if fast[i] > slow[i] else low
    return out


def sma_crossover_targets(
    close: np.ndarray, fast: int = 10, slow: int = 30, short: bool = False
) -> np.ndarray:
    """Target fractions of the SMA(fast)/SMA(slow) crossover on ``close``."""
    if not 0 < fast < slow:
        raise ConfigError(f"SMA crossover needs 0 < fast < slow, got fast={fast}, slow={slow}")
    values = np.ascontiguousarray(close, dtype=np.float64)
    out = np.empty(values.shape[0])  # numpy's large allocations use huge pages: fewer faults
    _sma_crossover(values, (fast, slow), short, out)
    return out


@njit(cache=True)
def _sma_crossover(close: np.ndarray, windows: tuple, short: bool, out: np.ndarray) -> None:
    """``crossover_targets(sma(close, fast), sma(close, slow), short)`` into ``out`` in one
    pass: the same running sums and divisions, without the two intermediate arrays."""
    fast, slow = windows
    out[:] = np.nan
    low = -1.0 if short else 0.0
    quick, lazy = 0.0, 0.0
    for i in range(close.shape[0]):
        quick += close[i]
        lazy += close[i]
        if i >= fast:
            quick -= close[i - fast]
        if i >= slow:
            lazy -= close[i - slow]
        a, b = quick / fast, lazy / slow
        if i >= slow - 1 and a == a and b == b:
            out[i] = 1.0 if a > b else low


def buy_and_hold_targets(n_bars: int, n_symbols: int = 1) -> np.ndarray:
    """Equal weight in every symbol from the first bar's close, never changed."""
    targets = np.full((n_bars, n_symbols), np.nan)
    if n_bars:
        targets[0] = 1.0 / n_symbols
    return targets
