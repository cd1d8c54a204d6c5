"""Paper trading: the backtest's SimBroker with every order and fill written to the ledger first.

:class:`LedgerSimBroker` changes nothing about execution (same fills, bit for bit, as the
backtest); it only records, before each step acts:

* a target order at submission as a *signal* (its target fraction and brackets), because its
  size is only known when the broker sizes it at the fill price;
* the same order as a concrete *intent* (signed quantity, submitted) the moment the broker sizes
  it, before the fill step runs — the quantity is computed with the broker's own sizing rule;
* a concrete (quantity) order as an intent + submission before the broker accepts it;
* every fill as it happens; exits the broker triggers itself (stop-loss, take-profit,
  liquidation — native brackets on a real exchange) are recorded as reduce-only orders when
  their fill is observed;
* a target order the broker drops unfinished (margin or volume cap, FOK, bracket exit) as
  cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.fillmath import account_marks, target_qty
from aitrader.engine.types import Bar, Order
from aitrader.errors import BrokerError
from aitrader.live.ledger import Ledger


class LedgerSimBroker(SimBroker):
    """A SimBroker that writes intents, submissions and fills to a :class:`Ledger`."""

    def __init__(self, symbols: Sequence[str], config: BrokerConfig, ledger: Ledger) -> None:
        super().__init__(symbols, config)
        self.ledger = ledger
        self.now = pd.Timestamp(0, tz="UTC")
        self.working: set[str] = set()  # target orders sized and on record, not yet closed
        self.recorded = 0  # fills written to the ledger

    def submit(self, order: Order) -> bool:
        if order.client_order_id not in self.seen and order.symbol in self.positions:
            if order.target_fraction is not None:
                payload: dict[str, object] = {
                    **{"client_order_id": order.client_order_id, "reason": order.reason},
                    **{"stop_loss": order.stop_loss, "take_profit": order.take_profit},
                }
                self.ledger.record_signal(self.now, order.symbol, order.target_fraction, payload)
            else:
                self.ledger.record_intent(order, time=self.now)
                self.ledger.mark_submitted(order.client_order_id)
        return super().submit(order)

    def cancel(self, client_order_id: str) -> bool:
        cancelled = super().cancel(client_order_id)
        if cancelled and self.ledger.find_order(client_order_id) is not None:
            self.ledger.mark_cancelled(client_order_id, "cancelled by the strategy")
            self.working.discard(client_order_id)
        return cancelled

    def open_bar(
        self,
        i: int,
        bars: Mapping[str, Bar],
        funding: Mapping[str, float] | None = None,
        sub_bars: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if any((funding or {}).values()):
            raise BrokerError("the paper broker does not simulate funding (spot paper trading)")
        self.now = bars[self.symbols[0]].time
        if self.config.fill_at == "open":
            self._size_targets(bars, "open")
        super().open_bar(i, bars, funding, sub_bars)
        self._record_fills()

    def close_bar(self, bars: Mapping[str, Bar]) -> None:
        if self.config.fill_at == "close":
            self._size_targets(bars, "close")
        super().close_bar(bars)
        self._record_fills()

    def _size_targets(self, bars: Mapping[str, Bar], at: str) -> None:
        """Record each newly sized target order as a concrete intent, before it can fill.

        Same rule and inputs as ``SimBroker._fill_targets``: equity marked at the fill prices,
        ``target_qty`` of the fraction, minus the position held.
        """
        prices = np.array([getattr(bars[s], at) for s in self.symbols], dtype=np.float64)
        equity = account_marks(self.cash, self.position_array(), prices, self.p)[0]
        for j, s in enumerate(self.symbols):
            pending = self.targets.get(s)
            if pending is None or pending.order.client_order_id in self.working:
                continue
            order = pending.order
            goal = pending.goal
            if goal is None:
                goal = target_qty(float(order.target_fraction or 0.0), equity, prices[j], self.p)
            qty = float(goal) - self.positions[s].qty
            if qty != 0.0:
                self.ledger.record_intent(replace(order, qty=qty), time=self.now)
                self.ledger.mark_submitted(order.client_order_id)
                self.working.add(order.client_order_id)

    def _record_fills(self) -> None:
        """New fills to the ledger, then close the target orders the broker let go of."""
        for n in range(self.recorded, len(self.fills)):
            fill = self.fills[n]
            oid = fill.client_order_id
            if oid not in self.working and self.ledger.find_order(oid) is None:
                exit_order = Order(fill.symbol, oid, qty=fill.qty, reduce_only=True)
                self.ledger.record_intent(replace(exit_order, reason=fill.reason), time=fill.time)
                self.ledger.mark_submitted(oid)
            self.ledger.record_fill(fill, trade_id=f"paper:{oid}:{n}")
            self.recorded = n + 1
        pending = {p.order.client_order_id for p in self.targets.values()}
        for oid in sorted(self.working - pending):
            self.working.discard(oid)
            if self.ledger.get_order(oid).status.is_open:
                self.ledger.mark_cancelled(oid, "target order closed unfinished by the broker")
