"""A position's stops on the live exchange broker: the native stop order resting on the
exchange (where the market offers ``STOP_LOSS``: it protects while the runtime is down) and,
elsewhere and for take-profits, the check of the brackets on closed bars; dust (a holding too
small to sell) counts as flat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from aitrader.engine.types import Bar, Order, OrderType
from aitrader.live.ledger import Ledger
from aitrader.live.plan_levels import PlanLevels
from aitrader.live.records import OrderStatus
from aitrader.venues.ccxt.calls import MarketRules


class ExchangeStops(PlanLevels):
    """The ExchangeBroker's stops and brackets (a mixin over its state and order calls)."""

    exchange: Any
    ledger: Ledger
    run_id: str
    rules: dict[str, MarketRules]
    native_stops: dict[str, bool]
    working: dict[str, str]
    marks: dict[str, float]
    bar: int
    now: pd.Timestamp
    client_order_id: Callable[[str], str]
    submit: Callable[[Order], bool]
    _floor: Callable[[str, float], float]
    _send: Callable[[str], bool]
    _resume_order: Callable[[str, OrderStatus], bool]

    @property
    def dust(self) -> dict[str, float]:
        """The most a position may hold and count as flat: below the market's minimum amount it
        cannot be sold (the policy's trade book closes a round trip at it)."""
        return {s: r.min_amount for s, r in self.rules.items()}

    def _dust(self, symbol: str, qty: float) -> bool:
        """A holding too small to sell (below the market's minimum amount or notional)."""
        rules, price = self.rules[symbol], self.marks.get(symbol, 0.0)
        return qty < rules.min_amount or (price > 0 and qty * price < rules.min_cost)

    def _ensure_stop(self, symbol: str) -> None:
        """A position with a stop level gets its native stop order on the exchange (once per
        position and bar; a bar redone after a restart finds it by its key)."""
        held, stop = self.positions[symbol].qty, self.brackets[symbol][0]
        if not self.native_stops[symbol] or symbol in self.stops or symbol in self.working:
            return
        if held <= 0 or self._dust(symbol, held) or math.isnan(stop):
            return
        amount = self._floor(symbol, held)
        price = float(self.exchange.price_to_precision(symbol, stop))
        if (
            price >= self.marks.get(symbol, math.inf)
            or amount * price < self.rules[symbol].min_cost
        ):
            return  # crossed already, or too small: the local check on closed bars acts
        key = f"{self.run_id}:{symbol}|{self.bar}|native_stop|{price!r}"
        cid = self.client_order_id(key)
        known = self.ledger.find_order(cid)
        if known is None:
            record = Order(symbol, cid, qty=-amount, type=OrderType.STOP, stop_price=price,
                           reduce_only=True, reason="stop_loss")  # fmt: skip
            self.ledger.record_intent(record, intent_key=key, time=self.now)
            self._send(cid)
        elif known.status.is_open:
            self._resume_order(cid, known.status)

    def _check_bracket(self, symbol: str, bar: Bar) -> None:
        """Exit at market when the closed bar traded through the stop or the target."""
        held = self.positions[symbol].qty
        stop, target = self.brackets[symbol]
        if held <= 0 or self._dust(symbol, held) or symbol in self.working:
            return
        reason = None
        if symbol in self.stops:
            stop = math.nan  # the exchange's stop order acts
        if not math.isnan(stop) and bar.low <= stop:
            reason = "stop_loss"
        elif not math.isnan(target) and bar.high >= target:
            reason = "take_profit"
        if reason is not None:
            qty = self._exit_qty(symbol, held, reason)
            exit_order = Order(symbol, f"{symbol}|{self.bar}|{reason}", qty=qty, reason=reason)
            self.submit(exit_order)
