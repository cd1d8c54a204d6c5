"""SimBroker: the bar-by-bar simulated broker for the event-driven engine (paper / replay).

Target orders, brackets, funding and liquidation follow exactly the compiled kernel's rules (the
same compiled helpers price and size them); limit, stop and stop-limit orders rest between bars.

Per bar, the common case is quick: a bar at whose open nothing can happen (nothing pending,
resting or bracketed, no funding, no position that could be liquidated) skips the open's steps,
and the account is marked by ``account_marks`` run interpreted on a few floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from aitrader.engine.config import P_MAKER, P_TAKER, BrokerConfig
from aitrader.engine.fillmath import (
    NO_HIT,
    STOP_HIT,
    account_marks,
    bracket_levels,
    increase_cap,
    liquidation_point,
    market_price,
    resolve_bracket,
    target_qty,
    volume_cap,
)
from aitrader.engine.records import order_id
from aitrader.engine.types import (
    Account,
    Bar,
    Fill,
    Liquidity,
    Order,
    OrderType,
    Position,
    TimeInForce,
    built,
)
from aitrader.errors import BrokerError

O, H, L, C, V = 0, 1, 2, 3, 4  # noqa: E741
_new, _set = object.__new__, object.__setattr__
_NO_SUB = np.zeros((0, 3))
Rows = list[list[float]]
"""A bar's open, high, low, close and volume per symbol (Python floats: scalar work on them is
quicker than on an array's items)."""
# The same rules, interpreted on Python floats (the parameters as a tuple): a compiled call from
# Python costs more than these few operations; same operations in the same order, same bits.
_marks: Callable[..., tuple[float, float, float]] = account_marks.py_func
_volume_cap: Callable[..., float] = volume_cap.py_func
_target_qty: Callable[..., float] = target_qty.py_func
_market_price: Callable[..., float] = market_price.py_func
_increase_cap: Callable[..., float] = increase_cap.py_func


@dataclass
class Target:
    """A pending target order and, once sized at its first fill attempt, the goal position."""

    order: Order
    goal: float | None = None  # target position once sized at the first fill attempt


class SimBroker:
    """Simulated execution against bars of a fixed set of symbols."""

    def __init__(self, symbols: Sequence[str], config: BrokerConfig) -> None:
        self.symbols = tuple(symbols)
        self.config, self.p = config, config.params()
        self.cash = config.initial_cash
        self.positions = {s: Position(s) for s in self.symbols}
        self.brackets: dict[str, tuple[float, float]] = {}
        self.shares: dict[str, float] = {}  # of the position a take-profit closes (absent: all)
        self.targets: dict[str, Target] = {}
        self.resting: dict[str, Order] = {}
        self.seen: set[str] = set()
        self.fills: list[Fill] = []
        self._bar: Bar | None = None  # the first symbol's bar now (its time stamps the fills)
        self._i = 0
        self._vol = [0.0] * len(self.symbols)  # what the bar's volume cap leaves per symbol
        self._floats = tuple(self.p.tolist())  # the parameters as Python floats (for _marks)
        self._at_close = config.fill_at == "close"
        self._account: tuple[Mapping[str, Bar], float, list[Position] | None, Account] | None = None

    def submit(self, order: Order) -> bool:
        """Accept an order once per client order id (a repeat is ignored and returns False)."""
        if order.symbol not in self.positions:
            raise BrokerError(f"order {order.client_order_id}: unknown symbol {order.symbol!r}")
        if order.client_order_id in self.seen:
            return False
        self.seen.add(order.client_order_id)
        if order.target_fraction is not None:
            self.targets[order.symbol] = Target(order)
        else:
            self.resting[order.client_order_id] = order
        return True

    def cancel(self, client_order_id: str) -> bool:
        """Cancel a resting or pending target order; False when it is not (or no longer) open."""
        if self.resting.pop(client_order_id, None) is not None:
            return True
        for symbol, pending in list(self.targets.items()):
            if pending.order.client_order_id == client_order_id:
                del self.targets[symbol]
                return True
        return False

    def protect(self, symbol: str, stop: float, take_profit: float, share: float = 1.0) -> None:
        """Set a held position's stop and take-profit prices (NaN: none) and the share of it
        the take-profit closes: how a trade plan moves its levels at a bar's close (they act
        from the next bar on). Nothing happens for a flat position."""
        if self.positions[symbol].qty == 0.0:
            return
        self.brackets[symbol] = (float(stop), float(take_profit))
        if share < 1.0:
            self.shares[symbol] = float(share)
        else:
            self.shares.pop(symbol, None)

    def _marked(self, arr: Rows, col: int) -> tuple[float, float, float]:
        """``account_marks`` with the positions marked at column ``col`` of this bar."""
        qty = [self.positions[s].qty for s in self.symbols]
        return _marks(self.cash, qty, [row[col] for row in arr], self._floats)

    def position_array(self) -> np.ndarray:
        return np.array([self.positions[s].qty for s in self.symbols])

    def account(self, bars: Mapping[str, Bar]) -> Account:
        """Cash, equity and margin with positions marked at the bars' closes. The account
        already made is returned while cash and positions are the same and either nothing is
        held (equity is the cash, whatever the bars) or the bars are the same mapping (bars are
        never changed once passed; the policy and the engine both mark every bar)."""
        cash, last = self.cash, self._account
        held: list[Position] | None = None
        for position in self.positions.values():
            if position.qty != 0.0:
                if held is None:
                    held, qty, marks = [position], [position.qty], [bars[position.symbol].close]
                else:
                    held.append(position)
                    qty.append(position.qty)
                    marks.append(bars[position.symbol].close)
        if (
            last is not None
            and last[1] == cash
            and last[2] == held
            and (held is None or last[0] is bars)
        ):
            return last[3]
        equity, margin = cash, 0.0  # account_marks of no position
        if held is not None:
            equity, margin, _ = _marks(cash, qty, marks, self._floats)
        account = _new(Account)  # built(Account, …), inline
        _set(account, "__dict__", {"cash": cash, "equity": equity, "margin_used": margin})
        self._account = (bars, cash, held, account)
        return account

    def open_bar(
        self,
        i: int,
        bars: Mapping[str, Bar],
        funding: Mapping[str, float] | None = None,
        sub_bars: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Everything that happens from a bar's open to its close, before the decision."""
        self._i, self._bar = i, bars[self.symbols[0]]
        if self._quiet(bars, funding):
            return
        arr = self._rows(bars)
        self._vol = [_volume_cap(row[V], self._floats) for row in arr]
        if funding:
            self._funding(arr, funding)
        if self.targets and not self._at_close:
            self._fill_targets(arr, O)
        if self.resting:
            self._fill_resting(arr)
        if self.brackets:
            self._brackets(arr, sub_bars or {})
        if not self._safe(bars, funding):
            self._liquidate(arr)

    def close_bar(self, bars: Mapping[str, Bar]) -> None:
        """At the close, after the decision: target orders fill here with ``fill_at="close"``."""
        if self._at_close and self.targets:
            self._fill_targets(self._rows(bars), C)

    def _quiet(self, bars: Mapping[str, Bar], funding: Mapping[str, float] | None) -> bool:
        """Whether nothing can happen at this bar's open, so that its steps can be skipped:
        nothing pending there, resting or bracketed, and :meth:`_safe` positions."""
        if self.resting or (self.targets and not self._at_close):
            return False
        if self.brackets:
            for sl, tp in self.brackets.values():
                if sl == sl or tp == tp:
                    return False
        return self._safe(bars, funding)

    def _safe(self, bars: Mapping[str, Bar], funding: Mapping[str, float] | None) -> bool:
        """Whether no position pays funding or can be liquidated in this bar: every position
        long, unfunded, with cash ≥ 0 and a positive open and low (equity over maintenance then
        stays ≥ cash ≥ 0 all through the bar)."""
        cash = self.cash
        for s, position in self.positions.items():
            if position.qty != 0.0:
                bar = bars[s]
                if position.qty < 0.0 or cash < 0.0 or not (bar.low > 0.0 and bar.open > 0.0):
                    return False
                if funding and funding.get(s, 0.0) != 0.0:
                    return False
        return True

    def _rows(self, bars: Mapping[str, Bar]) -> Rows:
        """The bars' open, high, low, close and volume as floats, one row per symbol."""
        return [
            [float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume)]
            for b in self._ordered(bars)
        ]

    def _ordered(self, bars: Mapping[str, Bar]) -> list[Bar]:
        return [bars[s] for s in self.symbols]

    def _execute(
        self, symbol: str, leg: tuple[float, float, float], taker: bool, why: tuple[str, str]
    ) -> None:
        """Apply one fill (never crossing zero) of signed qty at price versus a reference;
        ``why`` is the client order id and the reason."""
        qty, price, ref = leg
        oid, reason = why
        fee = abs(qty) * price * (self._floats[P_TAKER] if taker else self._floats[P_MAKER])
        self.cash = self.cash - qty * price - fee
        position = self.positions[symbol].apply(qty, price)
        self.positions[symbol] = position
        liquidity = Liquidity.TAKER if taker else Liquidity.MAKER
        slip = abs(qty) * abs(price - ref)
        when = self._bar.time if self._bar is not None else pd.Timestamp(0, tz="UTC")
        fill = {"time": when, "symbol": symbol, "qty": qty, "price": price, "fee": fee}
        fill |= {"slippage": slip, "liquidity": liquidity, "client_order_id": oid, "reason": reason}
        self.fills.append(built(Fill, fill))
        if position.qty == 0.0:
            self.brackets.pop(symbol, None)
            self.shares.pop(symbol, None)

    def _funding(self, arr: Rows, rates: Mapping[str, float]) -> None:
        for j, s in enumerate(self.symbols):
            q, rate = self.positions[s].qty, rates.get(s, 0.0)
            if q != 0.0 and rate != 0.0:
                self.cash = self.cash - q * arr[j][O] * rate

    def _fill_targets(self, arr: Rows, col: int) -> None:
        """Pending target orders at this bar's ``col`` price: reductions first, then growth."""
        p, tif = self._floats, self.config.time_in_force
        equity = self._marked(arr, col)[0]
        for j, s in enumerate(self.symbols):
            self._vol[j] = _volume_cap(arr[j][V], p)
            pending = self.targets.get(s)
            if pending is not None and pending.goal is None:
                fraction = float(pending.order.target_fraction or 0.0)
                pending.goal = _target_qty(fraction, equity, arr[j][col], p)
            gap = abs(float(pending.goal or 0.0) - self.positions[s].qty) if pending else 0.0
            if pending is not None and tif is TimeInForce.FOK and gap > self._vol[j]:
                del self.targets[s]
        capped = dict.fromkeys(self.symbols, False)
        for grow in (False, True):
            for j, s in enumerate(self.symbols):
                if s in self.targets:
                    capped[s] |= self._target_leg(j, arr, col, grow)
        for s in self.symbols:
            if s in self.targets and (not capped[s] or tif is not TimeInForce.GTC):
                del self.targets[s]

    def _target_leg(self, j: int, arr: Rows, col: int, grow: bool) -> bool:
        """One leg of a target order; True when the bar's volume cap cut it short."""
        s, p = self.symbols[j], self._floats
        pending = self.targets[s]
        pos, goal = self.positions[s].qty, float(pending.goal or 0.0)
        want = _leg_size(pos, goal, grow)
        if want <= 0.0:
            return False
        side = 1.0 if goal - pos > 0 else -1.0
        vol_before = float(self._vol[j])
        qty, ref = min(want, vol_before), arr[j][col]
        volume = arr[j][V]
        if grow:
            price = _market_price(ref, side, qty, volume, p)
            qty = min(qty, _increase_cap(price, ref, self._marked(arr, col), p))
        by_volume = vol_before < want and qty == vol_before
        if qty <= 1e-12 * want:
            return by_volume
        price = _market_price(ref, side, qty, volume, p)
        signed = -pos if not grow and qty == abs(pos) else side * qty
        self._vol[j] = vol_before - qty
        self._execute(s, (signed, price, ref), True, _why(pending.order))
        if grow:
            self._set_bracket(s, pending.order)
        return by_volume

    def _set_bracket(self, symbol: str, order: Order) -> None:
        position = self.positions[symbol]
        sl = np.nan if order.stop_loss is None else order.stop_loss
        tp = np.nan if order.take_profit is None else order.take_profit
        self.brackets[symbol] = bracket_levels(float(position.side), position.avg_price, sl, tp)
        share = order.take_profit_share
        if share is not None and share < 1.0:
            self.shares[symbol] = share
        else:
            self.shares.pop(symbol, None)

    def _brackets(self, arr: Rows, sub_bars: Mapping[str, np.ndarray]) -> None:
        for j, s in enumerate(self.symbols):
            pos, levels = self.positions[s].qty, self.brackets.get(s)
            if pos == 0.0 or levels is None or (np.isnan(levels[0]) and np.isnan(levels[1])):
                continue
            side = 1.0 if pos > 0 else -1.0
            bar = (arr[j][O], arr[j][H], arr[j][L])
            code, ref = resolve_bracket(side, levels, bar, sub_bars.get(s, _NO_SUB))
            if code == NO_HIT:
                continue
            if code == STOP_HIT:
                price = _market_price(ref, -side, abs(pos), arr[j][V], self._floats)
                self._execute(s, (-pos, price, ref), True, _bracket_why(s, self._i, "stop_loss"))
            else:
                self._take_profit(s, pos, ref)
            self.targets.pop(s, None)

    def _take_profit(self, symbol: str, pos: float, ref: float) -> None:
        """The take-profit's share of the position at its price (a maker fill); a part left
        keeps its stop and has no take-profit until one is set again (:meth:`protect`)."""
        share = self.shares.pop(symbol, 1.0)
        qty = -pos if share >= 1.0 else -pos * share
        self._execute(symbol, (qty, ref, ref), False, _bracket_why(symbol, self._i, "take_profit"))
        if self.positions[symbol].qty != 0.0:
            self.brackets[symbol] = (self.brackets[symbol][0], np.nan)

    def _liquidate(self, arr: Rows) -> None:
        pos = self.position_array()
        if not np.any(pos != 0.0):
            return
        opens, highs, lows = (np.array([row[k] for row in arr]) for k in (O, H, L))
        t = liquidation_point(self.cash, pos, (opens, highs, lows), self.p)
        if t < 0.0:
            return
        for j, s in enumerate(self.symbols):
            q = self.positions[s].qty
            if q != 0.0:
                o = arr[j][O]
                adverse = arr[j][L] if q > 0 else arr[j][H]
                price = o + t * (adverse - o)
                self._execute(s, (-q, price, price), True, _bracket_why(s, self._i, "liquidation"))
                self.targets.pop(s, None)

    def _fill_resting(self, arr: Rows) -> None:
        """Limit, stop and stop-limit orders against the bar's range, in submission order."""
        for oid, order in list(self.resting.items()):
            j = self.symbols.index(order.symbol)
            qty = _reduce_only_qty(order, self.positions[order.symbol].qty)
            quote = _quote(order, arr[j])
            if qty <= 0.0 or quote is None:
                if qty <= 0.0 or order.time_in_force is not TimeInForce.GTC:
                    del self.resting[oid]
                elif order.type is OrderType.STOP_LIMIT and _triggered(order, arr[j]):
                    self.resting[oid] = replace(order, type=OrderType.LIMIT, stop_price=None)
                continue
            if order.time_in_force is TimeInForce.FOK and qty > self._vol[j]:
                del self.resting[oid]
                continue
            filled = self._fill_order(j, order, (min(qty, float(self._vol[j])), *quote), arr)
            self._vol[j] -= filled
            left = abs(order.qty) - filled
            flat = order.reduce_only and self.positions[order.symbol].qty == 0.0
            if left <= 1e-12 * abs(order.qty) or flat or order.time_in_force is not TimeInForce.GTC:
                del self.resting[oid]
            else:
                self.resting[oid] = _remainder(order, left)

    def _fill_order(
        self, j: int, order: Order, fill: tuple[float, float, bool], arr: Rows
    ) -> float:
        """Fill up to ``qty`` of an order at its quote (``fill``: qty, reference, taker);
        returns the quantity filled. A taker fill never goes past the order's limit price."""
        s, side, p = self.symbols[j], float(order.side), self._floats
        qty, ref, taker = fill
        done = 0.0
        for grow in (False, True):
            pos = self.positions[s].qty
            part = qty - done if grow else (min(qty, abs(pos)) if pos * side < 0 else 0.0)
            if grow and part > 0.0:
                part = min(part, _increase_cap(ref, ref, self._marked(arr, O), p))
            if part <= 0.0:
                continue
            price = _market_price(ref, side, part, arr[j][V], p) if taker else ref
            if taker and order.limit_price is not None:
                limit = order.limit_price
                price = min(price, limit) if side > 0 else max(price, limit)
            signed = -pos if not grow and part == abs(pos) else side * part
            self._execute(s, (signed, price, ref), taker, _why(order))
            done += part
        return done


def _why(order: Order) -> tuple[str, str]:
    return order.client_order_id, order.reason


def _bracket_why(symbol: str, bar: int, reason: str) -> tuple[str, str]:
    """Client order id and reason of a broker-generated exit (stop, target, liquidation)."""
    return order_id(symbol, bar, reason), reason


def _remainder(order: Order, left: float) -> Order:
    """What rests after a partial fill: a triggered stop is a market order now, a triggered
    stop-limit a limit order."""
    rest = replace(order, qty=order.side * left)
    if order.type is OrderType.STOP:
        return replace(rest, type=OrderType.MARKET, stop_price=None)
    if order.type is OrderType.STOP_LIMIT:
        return replace(rest, type=OrderType.LIMIT, stop_price=None)
    return rest


def _leg_size(pos: float, goal: float, grow: bool) -> float:
    """How much of a move from ``pos`` to ``goal`` is growth (or reduction); 0 if none."""
    if grow:
        if abs(goal) <= abs(pos) or goal * pos < 0.0:
            return 0.0
        return abs(goal - pos)
    if pos == 0.0 or (goal * pos > 0.0 and abs(goal) >= abs(pos)):
        return 0.0
    return abs(pos) if goal * pos <= 0.0 else abs(pos) - abs(goal)


def _reduce_only_qty(order: Order, pos: float) -> float:
    """Quantity an order may trade now; a reduce-only order never grows or flips a position."""
    if not order.reduce_only:
        return abs(order.qty)
    if pos == 0.0 or (pos > 0) == (order.qty > 0):
        return 0.0
    return min(abs(order.qty), abs(pos))


def _triggered(order: Order, bar: Sequence[float]) -> bool:
    """Whether the bar reaches the order's stop price (buy: high ≥ stop, sell: low ≤ stop)."""
    stop = order.stop_price
    if stop is None:
        return True
    return bool(bar[H] >= stop) if order.qty > 0 else bool(bar[L] <= stop)


def _quote(order: Order, bar: Sequence[float]) -> tuple[float, bool] | None:
    """Reference price and whether it is a taker fill, or None if the bar does not reach it."""
    o, h, lo = float(bar[O]), float(bar[H]), float(bar[L])
    buy = order.qty > 0
    if order.type is OrderType.MARKET:
        return o, True
    trigger = o
    if order.stop_price is not None:
        stop = order.stop_price
        if not _triggered(order, bar):
            return None
        trigger = max(o, stop) if buy else min(o, stop)
        if order.type is OrderType.STOP:
            return trigger, True
    limit = float(order.limit_price or 0.0)
    if order.type is OrderType.STOP_LIMIT and (trigger <= limit if buy else trigger >= limit):
        return trigger, True
    if buy and lo <= limit:
        return (min(o, limit), False) if order.stop_price is None else (limit, False)
    if not buy and h >= limit:
        return (max(o, limit), False) if order.stop_price is None else (limit, False)
    return None
