"""The compiled portfolio simulation: target orders, brackets, funding, liquidation, marks.

Per bar, in order: funding at the open; pending target orders fill at the open (reductions
before increases); bracket stops/targets; liquidation; the decision at the close (a changed
target becomes a pending order); with ``fill_at="close"`` it fills at once; equity is marked.

Speed: the bar loop (``_run``) reads and writes the state arrays in place and calls only scalar
helpers; functions that take arrays run only on events (fills, bracket hits, liquidation,
funding). They are separate compiled functions rather than inlined copies, which keeps compile
time down. Every function here is compiled without numba's runtime (``_nrt=False``): the kernel
allocates nothing (its callers hand it every array, see :func:`workspace`), so passing arrays
between its functions does no reference counting. With the runtime, the atomic increments and
decrements of the ~40 arrays a fill passes around took about 60 % of a 1M-bar run; an
allocation added here fails to compile rather than slowing the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from aitrader.engine.config import P_AT_CLOSE, P_CASH, P_MAKER, P_TAKER, P_TIF
from aitrader.engine.fillmath import (
    BOTH_HIT,
    NO_HIT,
    STOP_HIT,
    account_marks,
    bracket_check,
    bracket_levels,
    increase_cap,
    liquidation_point,
    market_price,
    resolve_bracket,
    target_qty,
    volume_cap,
)
from aitrader.engine.policy import target_changed

# Per-symbol state columns.
POS, AVG, LAST, PEND, PEND_F, PEND_Q, PEND_SL, PEND_TP, PEND_BAR = 0, 1, 2, 3, 4, 5, 6, 7, 8
BR_SL, BR_TP, LV_SL, LV_TP, VOL_LEFT = 9, 10, 11, 12, 13
T_SIDE, T_BAR, T_EQ, T_EN, T_XQ, T_XN, T_FEE, T_SLIP, T_FUND = 14, 15, 16, 17, 18, 19, 20, 21, 22
CAPPED = 23
N_STATE = 24
# Fill rows: bar, symbol, signed qty, price, fee, slippage, taker (1/0), reason, order bar.
N_FILL = 9
# Trade rows: symbol, side, qty, entry bar, entry price, exit bar, exit price, pnl, fees,
# slippage, reason, open (1/0).
N_TRADE = 12
R_SIGNAL, R_STOP, R_TARGET, R_LIQUIDATION, R_END = 0, 1, 2, 3, 4
O, H, L, C, V = 0, 1, 2, 3, 4  # noqa: E741

# Compiled without numba's runtime (see the module docstring); its stubs omit the flag.
_compiled = njit(cache=True, _nrt=False)  # type: ignore[call-overload]


@_compiled
def _close_trade(ctx, i: int, j: int, reason: int, still_open: bool) -> None:  # type: ignore[no-untyped-def]
    bars, st, _acct, _fills, trades, cnt, _p = ctx
    k = cnt[1]
    if k >= trades.shape[0]:
        cnt[2] = 1
        return
    s = st[j]
    exit_n = s[T_XN] + (abs(s[POS]) * bars[C][i, j] if still_open else 0.0)
    pnl = s[T_SIDE] * (exit_n - s[T_EN]) - s[T_FEE] - s[T_FUND]
    row = trades[k]
    row[0], row[1], row[2], row[3] = j, s[T_SIDE], s[T_EQ], s[T_BAR]
    row[4], row[5] = s[T_EN] / s[T_EQ], i
    row[6] = bars[C][i, j] if still_open and s[T_XQ] == 0 else exit_n / s[T_EQ]
    row[7], row[8], row[9], row[10] = pnl, s[T_FEE], s[T_SLIP], reason
    row[11] = 1.0 if still_open else 0.0
    cnt[1] = k + 1


@_compiled
def _execute(ctx, i: int, j: int, leg: tuple) -> None:  # type: ignore[no-untyped-def]
    """Apply one fill (never crossing zero): cash, position, trade ledger, fill record."""
    _bars, st, acct, fills, _trades, cnt, _p = ctx
    qty, price, ref, fee_rate, taker, reason, order_bar = leg
    s = st[j]
    fee = abs(qty) * price * fee_rate
    slip = abs(qty) * abs(price - ref)
    acct[0] = acct[0] - qty * price - fee
    if s[POS] == 0.0:
        s[AVG], s[POS] = price, qty
        s[T_SIDE], s[T_BAR], s[T_EQ] = (1.0 if qty > 0 else -1.0), i, abs(qty)
        s[T_EN], s[T_XQ], s[T_XN] = abs(qty) * price, 0.0, 0.0
        s[T_FEE], s[T_SLIP], s[T_FUND] = 0.0, 0.0, 0.0
    elif (qty > 0) == (s[POS] > 0):
        size = abs(s[POS]) + abs(qty)
        s[AVG] = (s[AVG] * abs(s[POS]) + price * abs(qty)) / size
        s[POS] = s[POS] + qty
        s[T_EQ] += abs(qty)
        s[T_EN] += abs(qty) * price
    else:
        s[POS] = 0.0 if qty == -s[POS] else s[POS] + qty
        s[T_XQ] += abs(qty)
        s[T_XN] += abs(qty) * price
    s[T_FEE] += fee
    s[T_SLIP] += slip
    k = cnt[0]
    if k < fills.shape[0]:
        row = fills[k]
        row[0], row[1], row[2], row[3], row[4] = i, j, qty, price, fee
        row[5], row[6], row[7], row[8] = slip, taker, reason, order_bar
        cnt[0] = k + 1
    else:
        cnt[2] = 1
    if s[POS] == 0.0:
        _close_trade(ctx, i, j, reason, False)
        s[BR_SL], s[BR_TP], s[LV_SL], s[LV_TP] = np.nan, np.nan, np.nan, np.nan


@njit(cache=True, inline="always")
def _set_bracket(s: np.ndarray) -> None:
    s[BR_SL], s[BR_TP] = s[PEND_SL], s[PEND_TP]
    side = 1.0 if s[POS] > 0 else -1.0
    s[LV_SL], s[LV_TP] = bracket_levels(side, s[AVG], s[BR_SL], s[BR_TP])


@_compiled
def _order_leg(ctx, i: int, j: int, ref_col: int, grow: bool) -> bool:  # type: ignore[no-untyped-def]
    """Fill the reducing (``grow`` False) or growing leg of symbol j's pending order.

    Returns True when the bar's volume cap cut the leg short.
    """
    bars, st, acct, _fills, _trades, _cnt, p = ctx
    s = st[j]
    pos, goal = s[POS], s[PEND_Q]
    if grow:
        if abs(goal) <= abs(pos) or goal * pos < 0.0:
            return False
        want = abs(goal - pos)
    else:
        if pos == 0.0 or (goal * pos > 0.0 and abs(goal) >= abs(pos)):
            return False
        want = abs(pos) if goal * pos <= 0.0 else abs(pos) - abs(goal)
    side = 1.0 if goal - pos > 0 else -1.0
    vol_before = s[VOL_LEFT]
    qty = min(want, vol_before)
    ref = bars[ref_col][i, j]
    if grow:
        marks = account_marks(acct[0], st[:, POS], bars[ref_col][i], p)
        qty = min(qty, increase_cap(market_price(ref, side, qty, bars[V][i, j], p), ref, marks, p))
    by_volume = vol_before < want and qty == vol_before
    if qty <= 1e-12 * want:
        return by_volume
    price = market_price(ref, side, qty, bars[V][i, j], p)
    signed = -pos if not grow and qty == abs(pos) else side * qty
    s[VOL_LEFT] = vol_before - qty
    _execute(ctx, i, j, (signed, price, ref, p[P_TAKER], 1.0, R_SIGNAL, s[PEND_BAR]))
    if grow:
        _set_bracket(s)
    return by_volume


@_compiled
def _fill_pending(ctx, i: int, ref_col: int) -> None:  # type: ignore[no-untyped-def]
    """Fill every pending target order at this bar's ``ref_col`` price."""
    bars, st, acct, _fills, _trades, _cnt, p = ctx
    k = st.shape[0]
    waiting = False
    for j in range(k):
        waiting |= st[j, PEND] == 1.0
    if not waiting:
        return
    equity = account_marks(acct[0], st[:, POS], bars[ref_col][i], p)[0]
    for j in range(k):
        s = st[j]
        s[VOL_LEFT] = volume_cap(bars[V][i, j], p)
        if s[PEND] == 1.0 and s[PEND_Q] != s[PEND_Q]:
            s[PEND_Q] = target_qty(s[PEND_F], equity, bars[ref_col][i, j], p)
        if s[PEND] == 1.0 and p[P_TIF] == 2.0 and abs(s[PEND_Q] - s[POS]) > s[VOL_LEFT]:
            s[PEND] = 0.0
    st[:, CAPPED] = 0.0
    for grow in (False, True):
        for j in range(k):
            if st[j, PEND] == 1.0 and _order_leg(ctx, i, j, ref_col, grow):
                st[j, CAPPED] = 1.0
    for j in range(k):
        if st[j, CAPPED] == 0.0 or p[P_TIF] != 0.0:
            st[j, PEND] = 0.0


@_compiled
def _bracket_exit(ctx: tuple, i: int, j: int, hit: tuple, replay: tuple) -> None:
    """Close symbol j on a bracket hit (``hit``: bracket_check's code and reference price);
    ``replay`` (sub-bars, each bar's first sub-bar row) resolves a bar that hits both."""
    bars, st, _acct, _fills, _trades, _cnt, p = ctx
    code, ref = hit
    sub, sub_start = replay
    side = 1.0 if st[j, POS] > 0 else -1.0
    if code == BOTH_HIT:
        rows = sub[sub_start[i] : sub_start[i + 1], j] if sub_start.shape[0] > 0 else sub[0:0, j]
        bar = (bars[O][i, j], bars[H][i, j], bars[L][i, j])
        code, ref = resolve_bracket(side, (st[j, LV_SL], st[j, LV_TP]), bar, rows)
    qty = -st[j, POS]
    if code == STOP_HIT:
        price = market_price(ref, -side, abs(qty), bars[V][i, j], p)
        _execute(ctx, i, j, (qty, price, ref, p[P_TAKER], 1.0, R_STOP, i))
    else:
        _execute(ctx, i, j, (qty, ref, ref, p[P_MAKER], 0.0, R_TARGET, i))
    st[j, PEND] = 0.0


@_compiled
def _liquidate(ctx: tuple, i: int, t: float) -> None:
    """Close every position at fraction ``t`` of the way from the open to its adverse extreme."""
    bars, st, _acct, _fills, _trades, _cnt, p = ctx
    for j in range(st.shape[0]):
        q = st[j, POS]
        if q != 0.0:
            o = bars[O][i, j]
            adverse = bars[L][i, j] if q > 0 else bars[H][i, j]
            price = o + t * (adverse - o)
            _execute(ctx, i, j, (-q, price, price, p[P_TAKER], 1.0, R_LIQUIDATION, i))
            st[j, PEND] = 0.0


@_compiled
def _funding(ctx: tuple, i: int, rates: np.ndarray, row: int) -> None:
    bars, st, acct, _fills, _trades, _cnt, _p = ctx
    for j in range(st.shape[0]):
        q, rate = st[j, POS], rates[row, j]
        if q != 0.0 and rate != 0.0:
            payment = q * bars[O][i, j] * rate
            acct[0] = acct[0] - payment
            st[j, T_FUND] += payment


@njit(cache=True, inline="always")
def _any_pending(st: np.ndarray) -> bool:
    pending = False
    for j in range(st.shape[0]):
        pending |= st[j, PEND] == 1.0
    return pending


@njit(cache=True, inline="always")
def _due(st: np.ndarray, rates: np.ndarray, row: int) -> bool:
    """Whether any open position pays or receives funding at this bar."""
    due = False
    for j in range(st.shape[0]):
        due |= st[j, POS] != 0.0 and rates[row, j] != 0.0
    return due


@njit(cache=True, inline="always")
def _bracket_hit(q: float, levels: tuple, bar: tuple) -> tuple[int, float]:
    """bracket_check for a position of ``q`` with stop/target ``levels`` (NO_HIT when flat)."""
    sl, tp = levels
    if q == 0.0 or (sl != sl and tp != tp):
        return NO_HIT, np.nan
    return bracket_check(1.0 if q > 0 else -1.0, sl, tp, bar[0], bar[1], bar[2])


@njit(cache=True, inline="always")
def _mark(ctx: tuple, out: tuple, i: int) -> None:
    """Record bar i's close: equity (cash + positions at the close), gross notional, cash and
    positions (``out[3]`` holds every bar's, or only the last bar's when it has one row)."""
    bars, st, acct, _fills, _trades, _cnt, _p = ctx
    equity, cash, gross, positions = out
    row = i if positions.shape[0] > 1 else 0
    value, exposure = acct[0], 0.0
    for j in range(st.shape[0]):
        q = st[j, POS]
        positions[row, j] = q
        if q != 0.0:
            value += q * bars[C][i, j]
            exposure += abs(q) * bars[C][i, j]
    equity[i], gross[i], cash[i] = value, exposure, acct[0]


@njit(cache=True, inline="always")
def _quiet(st: np.ndarray, acct: np.ndarray) -> bool:
    """Nothing but brackets and new targets can act on the next bars: no order is pending and
    no position can be liquidated (cash not negative, no shorts)."""
    quiet = acct[0] >= 0.0
    for j in range(st.shape[0]):
        quiet &= st[j, PEND] == 0.0 and st[j, POS] >= 0.0
    return quiet


@njit(cache=True, inline="always")
def _quiet_until(ctx: tuple, targets: np.ndarray, out: tuple, i: int) -> int:
    """Mark bars from i on while they stay quiet (see ``_quiet``; no funding): such a bar's
    full step would only check brackets and targets, find nothing, and mark it. Returns the
    first bar where a bracket level is reached or a target changes (or n): its full step runs
    from the start, as nothing of it has been done."""
    bars, st, _acct, _fills, _trades, _cnt, _p = ctx
    last, n, k = st[:, LAST], bars[C].shape[0], st.shape[0]
    while i < n:
        for j in range(k):
            bar = (bars[O][i, j], bars[H][i, j], bars[L][i, j])
            if _bracket_hit(st[j, POS], (st[j, LV_SL], st[j, LV_TP]), bar)[0] != NO_HIT:
                return i
            if target_changed(targets[i, j], last[j]):
                return i
        _mark(ctx, out, i)
        i += 1
    return i


@njit(cache=True, inline="always")
def _run(ctx: tuple, inputs: tuple, out: tuple) -> None:
    """The bar loop. Only scalar helpers run on every bar; anything that takes arrays runs
    only when an event happens. Stretches of quiet bars (``_quiet``) skip to the next bar
    where something can happen; every other bar takes the full step."""
    bars, st, acct, _fills, _trades, _cnt, p = ctx
    targets, brackets, funding, sub, sub_start = inputs
    k, at_close, every_bar = st.shape[0], p[P_AT_CLOSE] == 1.0, funding.shape[0] > 1
    last, n = st[:, LAST], bars[C].shape[0]
    paying = False
    for r in range(funding.shape[0]):
        for j in range(k):
            paying |= funding[r, j] != 0.0
    i = 0
    while i < n:
        if not paying and _quiet(st, acct):
            i = _quiet_until(ctx, targets, out, i)
            if i == n:
                break
        if paying and _due(st, funding, i if every_bar else 0):
            _funding(ctx, i, funding, i if every_bar else 0)
        if not at_close and _any_pending(st):
            _fill_pending(ctx, i, O)
        holding = acct[0] < 0.0  # unlevered longs cannot be liquidated
        for j in range(k):
            holding |= st[j, POS] < 0.0
            bar = (bars[O][i, j], bars[H][i, j], bars[L][i, j])
            hit = _bracket_hit(st[j, POS], (st[j, LV_SL], st[j, LV_TP]), bar)
            if hit[0] != NO_HIT:
                _bracket_exit(ctx, i, j, hit, (sub, sub_start))
        if holding:
            t = liquidation_point(acct[0], st[:, POS], (bars[O][i], bars[H][i], bars[L][i]), p)
            if t >= 0.0:
                _liquidate(ctx, i, t)
        row = i if brackets.shape[0] > 1 else 0
        for j in range(k):
            t = targets[i, j]
            if target_changed(t, last[j]):
                last[j] = t
                st[j, PEND], st[j, PEND_F], st[j, PEND_Q] = 1.0, t, np.nan
                st[j, PEND_SL], st[j, PEND_TP] = brackets[row, j, 0], brackets[row, j, 1]
                st[j, PEND_BAR] = i
        if at_close and _any_pending(st):
            _fill_pending(ctx, i, C)
        _mark(ctx, out, i)
        i += 1


@njit(cache=True)
def workspace(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's scratch arrays for ``k`` symbols: per-symbol state, the account, counters."""
    return np.empty((k, N_STATE)), np.empty(1), np.empty(3, dtype=np.int64)


@_compiled
def simulate_into(  # type: ignore[no-untyped-def]
    bars: tuple, inputs: tuple, p: np.ndarray, records: tuple, out: tuple, work: tuple
):
    """``simulate`` into arrays allocated by the caller: ``records`` (fill and trade buffers,
    (capacity, N_FILL) and (capacity, N_TRADE)) and ``out`` (equity, cash, gross notional,
    positions: (n, k), or (1, k) for the last bar's only). numpy's large allocations use huge
    pages, which saves most of the page faults of a 1M-bar run. ``inputs``: targets, brackets,
    funding, sub-bars, sub-bar starts; ``work``: :func:`workspace`. Returns the number of fills
    and trades recorded (the first rows of ``records``) and whether a record buffer overflowed.
    """
    n, k = bars[C].shape
    st, acct, cnt = work
    st[:, :] = np.nan
    st[:, POS], st[:, PEND], st[:, AVG] = 0.0, 0.0, 0.0
    acct[0] = p[P_CASH]
    cnt[:] = 0
    fills, trades = records
    ctx = (bars, st, acct, fills, trades, cnt, p)
    _run(ctx, inputs, out)
    for j in range(k):
        if st[j, POS] != 0.0:
            _close_trade(ctx, n - 1, j, R_END, True)
    return cnt[0], cnt[1], cnt[2] == 1


@njit(cache=True, inline="always")
def simulate(  # type: ignore[no-untyped-def]
    bars: tuple,
    targets: np.ndarray,
    brackets: np.ndarray,
    funding: np.ndarray,
    sub: np.ndarray,
    sub_start: np.ndarray,
    p: np.ndarray,
    capacity: np.ndarray,
):
    """Run the portfolio over ``bars`` (open, high, low, close, volume: (n, k) arrays each, see
    ``backtest.Market``); see the module docstring for the order.

    ``brackets`` (n or 1, k, 2) and ``funding`` (n or 1, k) broadcast along time when their
    first axis is 1. Returns equity, cash, gross notional, positions, fills, trades, overflow.
    """
    n, k = bars[C].shape
    equity, cash, gross = np.empty(n), np.empty(n), np.empty(n)
    positions = np.empty((n, k))
    inputs = (targets, brackets, funding, sub, sub_start)
    records = (np.empty((capacity[0], N_FILL)), np.empty((capacity[1], N_TRADE)))
    out = (equity, cash, gross, positions)
    nf, nt, overflow = simulate_into(bars, inputs, p, records, out, workspace(k))
    return equity, cash, gross, positions, records[0][:nf], records[1][:nt], overflow
