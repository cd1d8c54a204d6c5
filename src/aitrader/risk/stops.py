"""Stop rules (pure, scalar or array): fixed %, ATR, trailing, break-even after TP1, time stop.

``side`` is +1 for a long position and −1 for a short; a stop lies below a long's entry.
"""

from __future__ import annotations

import numpy as np

ArrayLike = float | np.ndarray


def fixed_pct_stop(entry: ArrayLike, side: ArrayLike, pct: float) -> ArrayLike:
    """Stop ``pct`` (fraction) away from the entry, on the losing side."""
    return entry * (1.0 - side * pct)


def atr_stop(entry: ArrayLike, side: ArrayLike, atr: ArrayLike, mult: float) -> ArrayLike:
    """Stop ``mult`` ATRs away from the entry, on the losing side."""
    return entry - side * mult * atr


def trailing_stop(
    stop: ArrayLike, side: ArrayLike, extreme: ArrayLike, atr: ArrayLike, mult: float
) -> ArrayLike:
    """Ratchet: ``mult`` ATRs behind the best price since entry; never loosens the current stop."""
    candidate = extreme - side * mult * atr
    return np.where(np.asarray(side) > 0, np.maximum(stop, candidate), np.minimum(stop, candidate))


def break_even_stop(
    stop: ArrayLike, side: ArrayLike, entry: ArrayLike, offset: float = 0.0
) -> ArrayLike:
    """After TP1: stop moved to the entry (plus ``offset`` fraction in profit), never loosened."""
    level = entry * (1.0 + side * offset)
    return np.where(np.asarray(side) > 0, np.maximum(stop, level), np.minimum(stop, level))


def stop_hit(side: ArrayLike, low: ArrayLike, high: ArrayLike, stop: ArrayLike) -> ArrayLike:
    """Whether a bar's range reaches the stop (low ≤ stop for a long, high ≥ stop for a short)."""
    return np.where(np.asarray(side) > 0, low <= stop, high >= stop)


def stop_fill(side: float, open_: float, stop: float) -> float:
    """Exit price of a triggered stop: the stop, or the open when the bar gapped through it."""
    return min(open_, stop) if side > 0 else max(open_, stop)


def time_stop(bars_held: ArrayLike, max_bars: int) -> ArrayLike:
    """Whether a position has been held ``max_bars`` bars or more (0 disables the rule)."""
    return np.asarray(bars_held) >= max_bars if max_bars > 0 else np.zeros_like(bars_held, bool)
