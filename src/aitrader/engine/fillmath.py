"""Fill, sizing, bracket and liquidation rules: compiled once, called by the kernel and SimBroker.

These are the single source of truth for prices and sizes; the vectorised kernel and the
bar-by-bar broker both call them, so backtest, paper and live size and price orders alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.engine.config import (
    P_HALF_SPREAD,
    P_IMPACT,
    P_LEVERAGE,
    P_MAX_POS,
    P_MAX_TOTAL,
    P_MM,
    P_SLIP,
    P_TAKER,
    P_VOL_SHARE,
)

NO_HIT, STOP_HIT, TARGET_HIT, BOTH_HIT = 0, 1, 2, 3


@njit(cache=True, inline="always")
def market_price(ref: float, side: float, qty: float, volume: float, p: np.ndarray) -> float:
    """Fill price of a market order: half spread + fixed slippage + linear volume-share impact."""
    share = qty / volume if volume > 0 else 0.0
    return ref * (1.0 + side * (p[P_HALF_SPREAD] + p[P_SLIP] + p[P_IMPACT] * share))


@njit(cache=True, inline="always")
def volume_cap(volume: float, p: np.ndarray) -> float:
    """Largest quantity market orders may take from one bar."""
    return np.inf if p[P_VOL_SHARE] == np.inf else p[P_VOL_SHARE] * volume


@njit(cache=True, inline="always")
def account_marks(
    cash: float, pos: np.ndarray, marks: np.ndarray, p: np.ndarray
) -> tuple[float, float, float]:
    """Equity, margin in use and gross notional with positions marked at ``marks``.

    Also run interpreted (``account_marks.py_func``) on sequences of floats by the bar-by-bar
    broker: same operations in the same order, so the same bits, without the call overhead."""
    equity, gross = cash, 0.0
    for j in range(len(pos)):
        if pos[j] != 0.0:
            equity += pos[j] * marks[j]
            gross += abs(pos[j]) * marks[j]
    return equity, gross / p[P_LEVERAGE], gross


@njit(cache=True, inline="always")
def target_qty(fraction: float, equity: float, ref: float, p: np.ndarray) -> float:
    """Signed position size for a target fraction of equity, clipped to the per-position cap."""
    f = min(max(fraction, -p[P_MAX_POS]), p[P_MAX_POS])
    return f * equity / ref


@njit(cache=True, inline="always")
def increase_cap(
    price: float, ref: float, marks: tuple[float, float, float], p: np.ndarray
) -> float:
    """Most a position may grow: limited by free margin (fees included) and the gross cap."""
    equity, margin, gross = marks
    by_margin = max(equity - margin, 0.0) / (price * (1.0 / p[P_LEVERAGE] + p[P_TAKER]))
    by_total = max(p[P_MAX_TOTAL] * equity - gross, 0.0) / ref
    return min(by_margin, by_total)


@njit(cache=True, inline="always")
def bracket_levels(side: float, avg: float, sl: float, tp: float) -> tuple[float, float]:
    """Stop and target prices for fractions of the average entry (NaN: none)."""
    return avg * (1.0 - side * sl), avg * (1.0 + side * tp)


@njit(cache=True, inline="always")
def bracket_check(
    side: float, sl: float, tp: float, o: float, h: float, lo: float
) -> tuple[int, float]:
    """Which bracket leg a bar hits and the reference fill price.

    A gap through a level fills at the open; both levels inside the bar return BOTH_HIT with the
    stop price (the caller resolves it with sub-bars, or takes the stop: pessimistic).
    """
    if side > 0:
        if sl == sl and o <= sl:
            return STOP_HIT, o
        if tp == tp and o >= tp:
            return TARGET_HIT, o
        stop, target = sl == sl and lo <= sl, tp == tp and h >= tp
    else:
        if sl == sl and o >= sl:
            return STOP_HIT, o
        if tp == tp and o <= tp:
            return TARGET_HIT, o
        stop, target = sl == sl and h >= sl, tp == tp and lo <= tp
    if stop and target:
        return BOTH_HIT, sl
    if stop:
        return STOP_HIT, sl
    if target:
        return TARGET_HIT, tp
    return NO_HIT, np.nan


@njit(cache=True, inline="always")
def resolve_bracket(
    side: float, levels: tuple[float, float], bar: tuple[float, float, float], sub: np.ndarray
) -> tuple[int, float]:
    """Bracket outcome of a bar; ``sub`` (rows of open, high, low) replays it when ambiguous."""
    code, price = bracket_check(side, levels[0], levels[1], bar[0], bar[1], bar[2])
    if code != BOTH_HIT:
        return code, price
    for s in range(sub.shape[0]):
        code, price = bracket_check(side, levels[0], levels[1], sub[s, 0], sub[s, 1], sub[s, 2])
        if code == BOTH_HIT:
            return STOP_HIT, price
        if code != NO_HIT:
            return code, price
    return STOP_HIT, levels[0]


@njit(cache=True, inline="always")
def liquidation_terms(
    qty: float, bar: tuple[float, float, float], mm: float
) -> tuple[float, float]:
    """A position's equity over maintenance at the bar's open (``bar``: open, high, low) and
    its change on the way to the position's adverse extreme (low for longs, high for shorts)."""
    o, h, lo = bar
    adverse = lo if qty > 0 else h
    weight = qty - mm * abs(qty)
    return weight * o, weight * (adverse - o)


@njit(cache=True, inline="always")
def liquidation_fraction(at_open: float, change: float) -> float:
    """Where equity over maintenance ``at_open + t * change`` reaches zero; -1 if never."""
    if at_open <= 0.0:
        return 0.0
    if at_open + change >= 0.0:
        return -1.0
    return -at_open / change


@njit(cache=True, inline="always")
def liquidation_point(
    cash: float,
    pos: np.ndarray,
    bar: tuple[np.ndarray, np.ndarray, np.ndarray],
    p: np.ndarray,
) -> float:
    """Where in the bar (0 = open, 1 = adverse extremes) equity meets maintenance; -1 if never.

    ``bar`` holds each symbol's open, high and low (three arrays). Prices move linearly from the
    open to each position's adverse extreme (low for longs, high for shorts), all together.
    """
    opens, highs, lows = bar
    a, b = cash, 0.0
    for j in range(pos.shape[0]):
        if pos[j] != 0.0:
            da, db = liquidation_terms(pos[j], (opens[j], highs[j], lows[j]), p[P_MM])
            a += da
            b += db
    return liquidation_fraction(a, b)
