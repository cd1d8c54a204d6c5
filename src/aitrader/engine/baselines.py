"""Baseline strategies as target arrays: buy-and-hold and an SMA crossover.

Tie rule of the crossover: long while fast SMA > slow SMA (strictly); an exact tie is flat.
Before the slow SMA exists the target is NaN (no decision). The averages are TA-Lib's SMA.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.errors import ConfigError
from aitrader.features.indicators import sma


@njit(cache=True)
def crossover_targets(fast: np.ndarray, slow: np.ndarray, short: bool) -> np.ndarray:
    """1 while fast > slow, else 0 (or -1 with ``short``); NaN while either is missing."""
    out = np.empty(fast.shape[0])
    low = -1.0 if short else 0.0
    for i in range(fast.shape[0]):
        if fast[i] == fast[i] and slow[i] == slow[i]:
            out[i] = 1.0 if fast[i] > slow[i] else low
        else:
            out[i] = np.nan
    return out


def sma_crossover_targets(
    close: np.ndarray, fast: int = 10, slow: int = 30, short: bool = False
) -> np.ndarray:
    """Target fractions of the SMA(fast)/SMA(slow) crossover on ``close``."""
    if not 0 < fast < slow:
        raise ConfigError(f"SMA crossover needs 0 < fast < slow, got fast={fast}, slow={slow}")
    values = np.ascontiguousarray(close, dtype=np.float64)
    return crossover_targets(sma(values, fast), sma(values, slow), short)


def buy_and_hold_targets(n_bars: int, n_symbols: int = 1) -> np.ndarray:
    """Equal weight in every symbol from the first bar's close, never changed."""
    targets = np.full((n_bars, n_symbols), np.nan)
    if n_bars:
        targets[0] = 1.0 / n_symbols
    return targets
