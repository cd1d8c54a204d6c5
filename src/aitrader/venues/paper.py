"""The paper venue: the backtest's SimBroker with every order and fill written to the ledger first.

:class:`PaperVenue` gives the runtime a :class:`LedgerSimBroker`, which changes nothing about
execution (same fills, bit for bit, as the backtest); it only records, before each step acts:

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

Every write is idempotent (intent keys, trade ids, a signal once per bar and symbol), so a bar
redone after a crash records nothing twice. :meth:`LedgerSimBroker.checkpoint` is the broker's
state after a bar as a JSON document and :meth:`LedgerSimBroker.restore` puts it back, with the
fills re-read from the ledger: the runner resumes from them (see :mod:`aitrader.live.runner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from aitrader.engine.broker import SimBroker, Target
from aitrader.engine.config import BrokerConfig
from aitrader.engine.fillmath import account_marks, target_qty
from aitrader.engine.types import Bar, Fill, Liquidity, Order, OrderType, Position, TimeInForce
from aitrader.errors import BrokerError
from aitrader.live.ledger import Ledger
from aitrader.live.records import LedgerError


class PaperVenue:
    """Simulated fills with the backtest's costs (implements :class:`aitrader.venues.Venue`)."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return "paper"

    def broker(self, symbols: Sequence[str], ledger: Ledger, fresh: bool) -> LedgerSimBroker:
        return LedgerSimBroker(symbols, self.config, ledger)


class LedgerSimBroker(SimBroker):
    """A SimBroker that writes intents, submissions and fills to a :class:`Ledger`."""

    durable = False  # nothing leaves the process: a bar lost to a power cut is redone

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
                if not self.ledger.has_signal(self.now, order.symbol):  # once, also when redone
                    self.ledger.record_signal(
                        self.now, order.symbol, order.target_fraction, payload
                    )
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
        if all(p.order.client_order_id in self.working for p in self.targets.values()):
            return  # nothing newly sized this bar
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

    # -- checkpoint and restore -----------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """The broker's state after a bar (JSON; floats round-trip exactly, NaN as None)."""
        return {
            "cash": self.cash,
            "positions": {
                s: [p.qty, p.avg_price, p.realised_pnl] for s, p in self.positions.items()
            },
            "brackets": {s: [_num(v) for v in levels] for s, levels in self.brackets.items()},
            "shares": dict(self.shares),  # a trade plan's TP1 share per symbol
            "targets": {
                s: {"order": _order_json(p.order), "goal": p.goal} for s, p in self.targets.items()
            },
            "resting": [_order_json(o) for o in self.resting.values()],
            "working": sorted(self.working),
            "fills": len(self.fills),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put back a :meth:`checkpoint`; the fills are the ledger's first ``fills`` ones."""
        self.cash = float(state["cash"])
        for s, (qty, avg, realised) in state["positions"].items():
            self.positions[s] = Position(s, float(qty), float(avg), float(realised))
        self.brackets = {s: (_nan(a), _nan(b)) for s, (a, b) in state["brackets"].items()}
        self.shares = {s: float(v) for s, v in state.get("shares", {}).items()}
        self.targets = {
            s: Target(_order_from(v["order"]), None if v["goal"] is None else float(v["goal"]))
            for s, v in state["targets"].items()
        }
        self.resting = {o["client_order_id"]: _order_from(o) for o in state["resting"]}
        self.seen = {p.order.client_order_id for p in self.targets.values()} | set(self.resting)
        self.working = set(state["working"])
        self.fills = ledger_fills(self.ledger, int(state["fills"]))
        self.recorded = len(self.fills)


def ledger_fills(ledger: Ledger, count: int) -> list[Fill]:
    """The ledger's first ``count`` fills as engine fills (signed quantities)."""
    frame = ledger.fills().iloc[:count]
    if len(frame) < count:
        raise LedgerError(f"the ledger holds {len(frame)} fills, the checkpoint {count}")
    return [
        Fill(
            r.time,
            r.symbol,
            float(r.side * r.qty),
            float(r.price),
            float(r.fee),
            float(r.slippage),
            Liquidity(r.liquidity),
            r.client_order_id,
            r.reason,
        )
        for r in frame.itertuples(index=False)
    ]


def _num(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _order_json(order: Order) -> dict[str, Any]:
    out = asdict(order)
    out["type"], out["time_in_force"] = order.type.value, order.time_in_force.value
    return out


def _order_from(data: dict[str, Any]) -> Order:
    values = dict(data)
    values["type"] = OrderType(values["type"])
    values["time_in_force"] = TimeInForce(values["time_in_force"])
    return Order(**values)
