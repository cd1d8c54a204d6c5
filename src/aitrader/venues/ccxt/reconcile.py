"""Reconciliation after a restart: square the ledger with the exchange before trading again.

The ledger says what this run intended and what it saw; the exchange says what happened. On a
restart :func:`reconcile`:

1. looks up every order the ledger holds open (intents included) by its client order id:
   fills that happened while the runtime was down are adopted (recorded once, by trade id); an
   order the exchange closed is closed in the ledger (a native stop that fired while down is
   booked that way). A native stop order still resting stays: it protects the position. Any
   other order of an earlier bar still working is cancelled — the decision it came from is
   stale — and an intent of an earlier bar the exchange never received is closed as *not
   sent*, never re-sent. The orders of the bar that was being
   decided when the runtime stopped (after ``redo_after``) are left to that bar, which the runner
   redoes: it adopts what reached the exchange and sends the rest once;
2. cancels open orders on the run's markets that carry this run's client-order-id prefix but are
   unknown to the ledger (orphans), and leaves other orders alone (reported as foreign);
3. compares the account's balances with what the ledger implies (opening balances + fills) and
   **fails closed** — raises :class:`ReconcileError`, nothing is traded — when they disagree.

What changed is returned as a :class:`ReconcileReport` and written to the ledger's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from aitrader.engine.types import OrderType
from aitrader.venues.base import ReconcileError

if TYPE_CHECKING:
    from aitrader.venues.ccxt.broker import ExchangeBroker


@dataclass
class ReconcileReport:
    """What reconciliation found and changed."""

    adopted: list[str] = field(default_factory=list)  # trade ids booked while down
    closed: list[str] = field(default_factory=list)  # orders the exchange closed while down
    cancelled: list[str] = field(default_factory=list)  # our orders still working: cancelled
    unsent: list[str] = field(default_factory=list)  # intents the exchange never received
    redo: list[str] = field(default_factory=list)  # orders left to the bar being redone
    stops: list[str] = field(default_factory=list)  # native stop orders kept in place
    foreign: list[str] = field(default_factory=list)  # open orders not placed by this run
    balances: dict[str, tuple[float, float]] = field(default_factory=dict)  # expected, actual

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.closed or self.cancelled or self.unsent or self.redo)

    def lines(self) -> list[str]:
        """One line per kind of change, for the CLI and the ledger's events."""
        kinds = (
            ("fills adopted", self.adopted),
            ("orders closed by the exchange while down", self.closed),
            ("working orders cancelled", self.cancelled),
            ("intents never sent (closed, not re-sent)", self.unsent),
            ("orders of the interrupted bar (left to its redo)", self.redo),
            ("native stop orders kept", self.stops),
            ("foreign open orders left alone", self.foreign),
        )
        out = [f"{name}: {len(items)} ({', '.join(items[:5])})" for name, items in kinds if items]
        return out or ["nothing to change: the ledger matches the exchange"]


def reconcile(
    broker: ExchangeBroker, tolerance: float = 1e-6, redo_after: pd.Timestamp | None = None
) -> ReconcileReport:
    """Square ``broker``'s ledger with its exchange (see the module docstring); orders decided
    after ``redo_after`` (the last bar completed) belong to the bar the runner redoes."""
    ledger, report = broker.ledger, ReconcileReport()
    fills_before = len(broker.fills)
    _settle_open_orders(broker, report, redo_after)
    _cancel_unknown_orders(broker, report)
    report.adopted = [f"{f.symbol} {f.qty:+g}@{f.price:g}" for f in broker.fills[fills_before:]]
    _check_balances(broker, report, tolerance)
    level = "warning" if report.changed else "info"
    ledger.log_event(
        "reconcile",
        "; ".join(report.lines()),
        level,
        payload={"balances": {a: list(v) for a, v in report.balances.items()}},
    )
    return report


def _settle_open_orders(
    broker: ExchangeBroker, report: ReconcileReport, redo_after: pd.Timestamp | None
) -> None:
    """Settle every order the ledger holds open with what the exchange says of it."""
    ledger = broker.ledger
    for order in ledger.open_orders():
        cid, symbol = order.client_order_id, order.symbol
        if symbol not in broker.rules:
            raise ReconcileError(f"the ledger holds open order {cid} on {symbol}, not traded")
        found = broker.lookup_settled(order)
        redo = redo_after is not None and order.intent_at > redo_after
        if found is None and redo:
            report.redo.append(cid)
            continue
        if found is None:
            ledger.mark_cancelled(cid, "not on the exchange at restart: never sent, not re-sent")
            broker.working.pop(symbol, None)
            report.unsent.append(cid)
            continue
        broker.absorb(found)  # tracks it as working, or as the symbol's stop order
        if found.get("status") == "open" and redo:
            report.redo.append(cid)
        elif found.get("status") == "open" and order.type is OrderType.STOP:
            report.stops.append(cid)  # the position's protective stop: it stays
        elif found.get("status") == "open":
            broker.working[symbol] = cid
            broker.cancel_working(symbol, "still working at restart: cancelled (stale decision)")
            report.cancelled.append(cid)
        else:
            report.closed.append(cid)


def _cancel_unknown_orders(broker: ExchangeBroker, report: ReconcileReport) -> None:
    """Cancel the exchange's open orders this bot sent but its ledger does not know; list the
    foreign ones."""
    ledger = broker.ledger
    for symbol in broker.symbols:
        for order in broker.calls("fetch_open_orders", symbol):
            cid = order.get("clientOrderId")
            if ledger.find_order(str(cid)) is not None:
                continue
            if broker.owns(cid):
                broker.calls("cancel_order", order["id"], symbol)
                report.cancelled.append(str(cid))
            else:
                report.foreign.append(f"{symbol}:{order['id']}")


def check_account(broker: ExchangeBroker, tolerance: float = 1e-6) -> None:
    """The check made on every bar of a running run: balances as the ledger implies and no
    open order of this run that the ledger does not know; raises :class:`ReconcileError` (the
    runner pauses, reconciling, until they match again) on a change the run did not make."""
    for symbol in broker.symbols:
        for order in broker.calls("fetch_open_orders", symbol):
            cid = order.get("clientOrderId")
            known = broker.ledger.find_order(str(cid))
            if broker.owns(cid) and (known is None or not known.status.is_open):
                message = f"open order {cid} on {symbol} is not open in the ledger: not trading"
                broker.ledger.log_event("reconcile", message, "error")
                raise ReconcileError(message)
    _check_balances(broker, ReconcileReport(), tolerance)


def _check_balances(broker: ExchangeBroker, report: ReconcileReport, tolerance: float) -> None:
    """The account must hold what the ledger implies, or nothing is traded (fail closed)."""
    actual = broker.balances()
    outside = broker.opening.get(broker.quote, 0.0) - (broker.capital or 0.0)  # not the run's
    expected = {broker.quote: broker.cash + outside}
    for symbol, rules in broker.rules.items():
        held = broker.positions[symbol].qty
        expected[rules.base] = expected.get(rules.base, broker.opening.get(rules.base, 0.0)) + held
    wrong = []
    for asset, want in sorted(expected.items()):
        have = actual.get(asset, 0.0)
        report.balances[asset] = (want, have)
        if abs(have - want) > tolerance * max(1.0, abs(want)):
            wrong.append(f"{asset}: ledger {want:.8f}, exchange {have:.8f}")
    if wrong:
        message = (
            "the account does not match the ledger (" + "; ".join(wrong) + "): not trading. "
            "Was the account changed outside this run (a manual trade, a transfer)? Undo the "
            "change, or stop the run and start a new ledger"
        )
        broker.ledger.log_event("reconcile", message, "error")
        raise ReconcileError(message)
