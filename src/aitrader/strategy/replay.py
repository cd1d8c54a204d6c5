"""Compiled replay of one trade plan over later bars (used by :func:`plans.replay_plans`).

Rules: the entry is a limit at the plan's entry price (a gap through it fills at the open);
on the entry bar only the stop is checked; before TP1, a bar reaching both the stop and TP1 is
a stop (pessimistic); TP1 closes ``tp1_fraction`` and moves the stop to break-even, after which
the stop trails ``trail_atr`` ATRs behind the best price (updated at each bar's end); a bar
reaching both the stop and TP2 is a stop; a stop gapped through fills at the open.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EXPIRED, STOP, TP1, TP1_BE, TP1_TRAIL, TP2, TIME, OPEN = range(8)
# Parameter vector: tp1_fraction, trail_atr, break-even offset, max hold bars, validity bars.
P_FRACTION, P_TRAIL, P_BE, P_HOLD, P_VALID = range(5)
# Plan vector: start bar (the bar after the signal), side, entry, stop, tp1, tp2, atr.
Q_START, Q_SIDE, Q_ENTRY, Q_STOP, Q_TP1, Q_TP2, Q_ATR = range(7)


@njit(cache=True)
def _fill_entry(ohlc: np.ndarray, q: np.ndarray, valid: int) -> tuple[int, float]:
    """Bar index and price where the limit entry fills (-1 when it expires)."""
    side, entry = q[Q_SIDE], q[Q_ENTRY]
    start = int(q[Q_START])
    stop = min(ohlc.shape[0], start + valid)
    for i in range(start, stop):
        o, h, lo = ohlc[i, 0], ohlc[i, 1], ohlc[i, 2]
        if side * (entry - o) >= 0:
            return i, o
        if (side > 0 and lo <= entry) or (side < 0 and h >= entry):
            return i, entry
    return -1, 0.0


@njit(cache=True)
def _reached(side: float, h: float, lo: float, level: float) -> bool:
    return h >= level if side > 0 else lo <= level


@njit(cache=True)
def _stopped(side: float, h: float, lo: float, stop: float) -> bool:
    return lo <= stop if side > 0 else h >= stop


@njit(cache=True)
def _through(side: float, o: float, level: float, favourable: bool) -> float:
    """Fill of a level on a bar opening at ``o``: the open when it gapped beyond the level."""
    if favourable:
        return max(o, level) if side > 0 else min(o, level)
    return min(o, level) if side > 0 else max(o, level)


@njit(cache=True)
def replay_one(
    ohlc: np.ndarray, q: np.ndarray, p: np.ndarray
) -> tuple[int, int, int, float, float]:
    """``(entry bar, exit bar, outcome, gross return, fill price)`` of one plan."""
    side = q[Q_SIDE]
    first, fill = _fill_entry(ohlc, q, int(p[P_VALID]))
    if first < 0:
        return -1, min(ohlc.shape[0], int(q[Q_START]) + int(p[P_VALID])) - 1, EXPIRED, 0.0, 0.0
    stop, remaining, gross, after_tp1 = q[Q_STOP], 1.0, 0.0, False
    be_level = fill * (1.0 + side * p[P_BE])
    extreme = fill
    for i in range(first, ohlc.shape[0]):
        o, h, lo, c = ohlc[i, 0], ohlc[i, 1], ohlc[i, 2], ohlc[i, 3]
        if _stopped(side, h, lo, stop):
            px = _through(side, o, stop, False)
            gross += remaining * side * (px - fill) / fill
            if not after_tp1:
                return first, i, STOP, gross, fill
            return first, i, TP1_BE if stop == be_level else TP1_TRAIL, gross, fill
        if i > first and not after_tp1 and _reached(side, h, lo, q[Q_TP1]):
            px = _through(side, o, q[Q_TP1], True)
            part = min(remaining, p[P_FRACTION])
            gross += part * side * (px - fill) / fill
            remaining -= part
            after_tp1 = True
            stop = max(stop, be_level) if side > 0 else min(stop, be_level)
            if remaining <= 1e-12:
                return first, i, TP1, gross, fill
        if i > first and after_tp1 and _reached(side, h, lo, q[Q_TP2]):
            px = _through(side, o, q[Q_TP2], True)
            return first, i, TP2, gross + remaining * side * (px - fill) / fill, fill
        extreme = max(extreme, h) if side > 0 else min(extreme, lo)
        if after_tp1:
            trail = extreme - side * p[P_TRAIL] * q[Q_ATR]
            stop = max(stop, trail) if side > 0 else min(stop, trail)
        if p[P_HOLD] > 0 and i - first + 1 >= p[P_HOLD]:
            return first, i, TIME, gross + remaining * side * (c - fill) / fill, fill
    last = ohlc.shape[0] - 1
    return first, last, OPEN, gross + remaining * side * (ohlc[last, 3] - fill) / fill, fill
