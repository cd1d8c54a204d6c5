"""Live orders on a real exchange through ccxt: the Engine's broker for spot markets.

:class:`ExchangeBroker` takes the same calls as the simulated broker (``open_bar``, ``submit``,
``cancel``, ``close_bar``, ``account``, ``positions``, ``fills``), so the decision path of a
backtest runs unchanged on an exchange. What it adds is everything a real venue needs:

* **Rounding to the market's rules, no re-sizing**: the risk manager decided the size (a target
  fraction at the decision bar's close); the broker only floors it to the amount precision and
  refuses it, with the reason in the ledger, when it rounds to nothing, falls below the minimum
  amount or notional, or asks for more than the account holds (:meth:`ExchangeBroker._size`).
  Spot is long only: a negative target means flat.
* **Write-ahead, idempotent orders**: each order is an intent in the ledger before it is sent,
  with a client order id derived from the run and the policy's deterministic order id. A redone
  bar finds its intent; an order whose fate is unknown (timeout, 5xx, a process killed after
  sending) is looked up until its ``recvWindow`` (+ margin) has passed, before it is ever sent
  again — within one process and across restarts alike.
* **Network faults**: calls go through :class:`~aitrader.venues.ccxt.calls.ExchangeCalls` (retries,
  ``Retry-After``, IP bans); a network error still escaping a Broker call reaches the runner as
  :class:`~aitrader.venues.ccxt.calls.TransientExchangeError` (a venue error, not ccxt's).
* **Fills** are read from the exchange's trades (ids make them idempotent), net of a commission
  charged in the base asset, so the ledger's position equals the account's holding.
* **Stops**: where the market offers ``STOP_LOSS``, a position's stop rests on the exchange for
  the whole position (it protects while the runtime is down); any other order on the symbol —
  sent, re-sent or redone — cancels it first (it locks the position), and an exit larger than
  what is still held is closed as covered, not sent. Elsewhere, and for take-profits, brackets
  are checked locally on closed bars (:class:`~aitrader.venues.ccxt.stops.ExchangeStops`).
* **Trade plans** move the levels at each close (:class:`~aitrader.live.plan_levels.PlanLevels`).
* **Continuous reconciliation**: every bar checks the account's balances and this run's open
  orders against the ledger (:func:`~aitrader.venues.ccxt.reconcile.check_account`).

:meth:`checkpoint` / :meth:`restore` let the runner resume it: the state comes back from the
ledger, and :func:`aitrader.venues.ccxt.reconcile.reconcile` then squares it with the exchange.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from aitrader.engine.types import Account, Bar, Fill, Liquidity, Order, OrderType, Position
from aitrader.errors import BrokerError, ConfigError
from aitrader.live.ledger import Ledger, apply_fill
from aitrader.live.records import LedgerOrder, OrderStatus
from aitrader.logsafe import short
from aitrader.venues.ccxt.calls import (
    REJECTIONS,
    SETTLE_MARGIN,
    ExchangeCalls,
    MarketRules,
    refused,
    translated,
)
from aitrader.venues.ccxt.reconcile import ReconcileReport, check_account, reconcile
from aitrader.venues.ccxt.stops import ExchangeStops
from aitrader.venues.paper import ledger_fills

log = logging.getLogger(__name__)


class ExchangeBroker(ExchangeStops):
    """The Engine's broker on a ccxt spot exchange (see the module docstring)."""

    durable = True  # orders leave the process: intents are on disk before they are sent

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        ledger: Ledger,
        run_id: str,
        calls: ExchangeCalls | None = None,
        capital: float | None = None,
    ) -> None:
        if not run_id or len(run_id) < 6:
            raise ConfigError("run_id must have at least 6 characters")
        self.exchange, self.ledger, self.run_id = exchange, ledger, run_id
        self.calls = calls or ExchangeCalls(exchange)
        self.symbols = list(symbols)
        self.rules = {s: MarketRules.of(exchange, s) for s in self.symbols}
        quotes = {r.quote for r in self.rules.values()}
        if len(quotes) != 1:
            raise ConfigError(f"all symbols must share one quote currency, got {sorted(quotes)}")
        self.quote = quotes.pop()
        if capital is not None and not capital > 0:
            raise ConfigError(f"capital must be > 0, got {capital}")
        self.capital = capital  # the quote this run trades with (None: the whole balance)
        self.recv_window_ms = int(exchange.options.get("recvWindow", 10_000))
        self.positions: dict[str, Position] = {s: Position(s) for s in self.symbols}
        self.fills: list[Fill] = []
        self.cash = 0.0
        self.opening: dict[str, float] = {}  # account balances when the run first started
        self.brackets: dict[str, tuple[float, float]] = {s: (math.nan, math.nan) for s in symbols}
        self.pending_brackets: dict[str, tuple[float | None, float | None]] = {}
        self.shares: dict[str, float] = {}  # of the position a take-profit sells (absent: all)
        self.working: dict[str, str] = {}  # symbol -> client order id of an order still open
        self.stops: dict[str, str] = {}  # symbol -> client order id of its native stop order
        self.native_stops = {
            s: "STOP_LOSS" in (exchange.market(s).get("info", {}).get("orderTypes") or [])
            for s in self.symbols
        }
        self.marks: dict[str, float] = {}
        self.now = pd.Timestamp(0, tz="UTC")
        self.bar = 0
        self.started = False
        self.reconciled: ReconcileReport | None = None  # what the last restart changed

    # -- start, checkpoint, restore --------------------------------------------------------

    def start(self) -> None:
        """A fresh run: the account's balances now are the opening balances. The run trades
        ``capital`` of the quote balance (default: all of it); the rest of the account, base
        assets already held included, is left alone."""
        if self.ledger.orders():
            raise ConfigError("the ledger already holds orders: resume that run or use a new file")
        totals = self.balances()
        self.opening = {a: totals.get(a, 0.0) for a in self._assets()}
        available = self.opening[self.quote]
        if available <= 0:
            raise ConfigError(f"no {self.quote} to trade with on {self.exchange.id}")
        if self.capital is not None and self.capital > available:
            raise ConfigError(
                f"capital {self.capital:g} {self.quote} exceeds the {available:g} available"
            )
        self.capital = available if self.capital is None else self.capital
        self.cash = self.capital
        self.ledger.log_event(
            "broker", f"live run {self.run_id} started", payload={"opening": self.opening}
        )
        self.started = True

    def checkpoint(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "opening": self.opening,
            "capital": self.capital,
            "brackets": {s: [_num(a), _num(b)] for s, (a, b) in self.brackets.items()},
            "pending_brackets": {s: list(v) for s, v in self.pending_brackets.items()},
            "shares": dict(self.shares),
            "working": dict(self.working),
            "stops": dict(self.stops),
            "fills": len(self.fills),
            "bar": self.now.isoformat(),
        }

    @translated
    def restore(self, state: Mapping[str, Any]) -> None:
        """State after a restart: the checkpoint and every fill in the ledger (fills recorded
        after the checkpoint included), then :func:`~aitrader.venues.ccxt.reconcile.reconcile` with
        the exchange — which raises, so nothing is traded, when they cannot be squared."""
        if state.get("run_id") != self.run_id:
            raise ConfigError(f"checkpoint of run {state.get('run_id')}, not {self.run_id}")
        self.opening = {a: float(v) for a, v in state["opening"].items()}
        self.pending_brackets = {s: (a, b) for s, (a, b) in state["pending_brackets"].items()}
        self.shares = {s: float(v) for s, v in state.get("shares", {}).items()}
        self.working = dict(state["working"])
        self.stops = dict(state.get("stops", {}))
        self.capital = float(state.get("capital") or self.opening[self.quote])
        self.fills, self.cash = [], self.capital
        self.positions = {s: Position(s) for s in self.symbols}
        done = int(state["fills"])
        fills = ledger_fills(self.ledger, len(self.ledger.fills()))
        for fill in fills[:done]:
            self._book(fill)
        self.brackets = {s: (_nan(a), _nan(b)) for s, (a, b) in state["brackets"].items()}
        for fill in fills[done:]:  # recorded after the checkpoint: they move the brackets
            self._book(fill)
        self.started = True
        self.now = pd.Timestamp(state["bar"])
        self.reconciled = reconcile(self, redo_after=self.now)

    # -- the Engine's broker calls ---------------------------------------------------------

    def account(self, bars: Mapping[str, Bar]) -> Account:
        return Account(self.cash, self._equity({s: b.close for s, b in bars.items()}), 0.0)

    def _equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus the positions marked at ``marks`` (spot: no margin)."""
        return self.cash + sum(self.positions[s].qty * marks[s] for s in self.symbols if s in marks)

    @translated
    def open_bar(
        self,
        i: int,
        bars: Mapping[str, Bar],
        funding: Mapping[str, float] | None = None,
        sub_bars: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """A closed bar arrived: poll working orders, then act on stops / targets it crossed."""
        if not self.started:
            raise BrokerError("ExchangeBroker.start() or restore() must run before the first bar")
        self.bar, self.now = i, bars[self.symbols[0]].time
        self.marks = {s: bars[s].close for s in self.symbols}
        self.sync()
        check_account(self)  # a change the run did not make pauses it (ReconcileError)
        for symbol in self.symbols:
            self._check_bracket(symbol, bars[symbol])
            self._ensure_stop(symbol)

    def mark(self, i: int, bars: Mapping[str, Bar]) -> None:
        """A bar passed while the venue could not be reached or squared (the runner is paused,
        reconciling): only the clock and the marks move; nothing is sent or polled."""
        self.bar, self.now = i, bars[self.symbols[0]].time
        self.marks = {s: bars[s].close for s in self.symbols}

    @translated
    def close_bar(self, bars: Mapping[str, Bar]) -> None:
        self.sync()
        for symbol in self.symbols:
            self._ensure_stop(symbol)

    @translated
    def submit(self, order: Order) -> bool:
        """Size, record and send one order; False when it is not sent (below the market's
        minimum, nothing to do, or refused by the exchange — each logged in the ledger)."""
        symbol = order.symbol
        if symbol not in self.rules:
            raise BrokerError(f"order {order.client_order_id}: unknown symbol {symbol}")
        key = f"{self.run_id}:{order.client_order_id}"
        cid = self.client_order_id(key)
        known = self.ledger.find_order(cid)
        if known is not None:
            return self._resume_order(known.client_order_id, known.status)
        if symbol in self.working:
            self.cancel_working(symbol, "a new target for the symbol")
        if symbol in self.stops:  # it locks the position: cancelled, placed again afterwards
            self.cancel_stop(symbol, "another order on the symbol")
        qty = self._size(order)
        if qty == 0.0:
            return False
        if order.target_fraction is not None and order.target_fraction > 0:
            self.pending_brackets[symbol] = (order.stop_loss, order.take_profit)
            self._share(symbol, order.take_profit_share)
        record = Order(symbol, cid, qty=qty, reduce_only=qty < 0, reason=order.reason)
        self.ledger.record_intent(record, intent_key=key, time=self.now)
        return self._send(cid)

    @translated
    def cancel(self, client_order_id: str) -> bool:
        cid = self.client_order_id(f"{self.run_id}:{client_order_id}")
        symbol = next((s for s, c in self.working.items() if c == cid), None)
        if symbol is None:
            return False
        return self.cancel_working(symbol, "cancelled by the strategy")

    # -- identifiers and balances ----------------------------------------------------------

    def client_order_id(self, key: str) -> str:
        """The exchange's client order id for an intent key: deterministic, 26 characters of
        ``[a-z0-9]`` (valid on Binance and most venues), unique per run and order."""
        digest = hashlib.blake2b(key.encode(), digest_size=9).hexdigest()
        return f"at{self.run_id[:6].lower()}{digest}"

    def owns(self, client_order_id: str | None) -> bool:
        """Whether an exchange order was placed by this run."""
        return bool(client_order_id) and str(client_order_id).startswith(
            f"at{self.run_id[:6].lower()}"
        )

    def balances(self) -> dict[str, float]:
        """The account's total balance per asset."""
        balance = self.calls("fetch_balance")
        totals = balance.get("total") or {}
        return {str(a): float(v or 0.0) for a, v in totals.items()}

    def _assets(self) -> list[str]:
        return sorted({self.quote} | {r.base for r in self.rules.values()})

    # -- sizing ----------------------------------------------------------------------------

    def _size(self, order: Order) -> float:
        """The quantity the risk manager approved, only rounded to the market's rules (0: not
        sent, the reason in the ledger). A target fraction is the approved holding at the
        decision bar's close and the account's equity there — the marks the risk manager
        checked — so nothing is re-sized here: no cap, no cash buffer. The amount is floored
        to the lot step; one that rounds to nothing, falls below the minimum amount or
        notional, sells more than is held or buys more than the cash pays for is refused."""
        symbol, rules = order.symbol, self.rules[order.symbol]
        price = self.marks.get(symbol)
        if price is None or not price > 0:
            raise BrokerError(f"order {order.client_order_id}: no price for {symbol} yet")
        held = self.positions[symbol].qty
        if order.target_fraction is None:
            qty = order.qty
        elif order.target_fraction < 0:
            self._note(order, "spot market: a short target means flat")
            qty = -held
        else:
            qty = order.target_fraction * self._equity(self.marks) / price - held
        amount = self._floor(symbol, abs(qty))
        refusal = rules.refusal(qty, amount, price, held, self.cash)
        if refusal is not None:
            if abs(qty) > 1e-12:  # nothing to do is not a refusal
                self._note(order, f"{refusal}: not sent")
            return 0.0
        return math.copysign(amount, qty)

    def _floor(self, symbol: str, amount: float) -> float:
        try:
            return float(self.exchange.amount_to_precision(symbol, amount))
        except ccxt.InvalidOrder:  # below the precision step
            return 0.0

    def _note(self, order: Order, message: str) -> None:
        self.ledger.log_event(
            "broker", f"{order.symbol} {order.client_order_id}: {message}", "warning", time=self.now
        )

    # -- sending, polling, cancelling ------------------------------------------------------

    def _send(self, cid: str) -> bool:
        """Send a recorded intent; after an answer that leaves its fate unknown (timeout, 5xx)
        look it up by client order id until the request can no longer execute (its
        ``recvWindow`` has passed) before sending it again. Any other order on the symbol
        first cancels its native stop (which locks the position); an exit larger than what is
        still held (the stop filled meanwhile) is not sent: the position is already covered."""
        order = self.ledger.get_order(cid)
        symbol = order.symbol
        if order.type is not OrderType.STOP and symbol in self.stops:
            self.cancel_stop(symbol, "another order on the symbol")
        if order.qty < 0 and order.type is not OrderType.STOP and self._covered(order):
            return False
        side = "buy" if order.qty > 0 else "sell"
        amount = self.exchange.amount_to_precision(symbol, abs(order.qty))
        params: dict[str, Any] = {"newClientOrderId": cid, "recvWindow": self.recv_window_ms}
        if order.type is OrderType.STOP:
            params["stopLossPrice"] = order.stop_price
        for attempt in range(1, self.calls.attempts + 1):
            self.calls.check_quiet("create_order")
            self.ledger.mark_submitted(cid)  # each send: its time bounds when it may execute
            self.ledger.commit()  # the intent and its send time are on disk before it leaves
            deadline = time.monotonic() + self.recv_window_ms / 1000 + SETTLE_MARGIN
            try:
                placed = self.exchange.create_order(symbol, "market", side, amount, None, params)
                self.calls.succeeded()
            except REJECTIONS as exc:
                found = self.lookup(symbol, cid) if attempt > 1 else None
                if found is None:
                    return self._rejected(cid, symbol, exc)
                placed = found
            except ccxt.NetworkError as exc:
                found = None if refused(exc) else self._settle(symbol, cid, deadline)
                if found is None:
                    self.calls.wait_after("create_order", exc, attempt)
                    continue
                placed = found
            self.absorb(placed)
            return True
        return False  # pragma: no cover

    def _covered(self, order: LedgerOrder) -> bool:
        """Whether an exit asks for more than is held (a stop or an earlier exit closed the
        position meanwhile): then it is closed in the ledger as not needed — state, not an
        error — and the next bar decides on what is held."""
        held = self._floor(order.symbol, self.positions[order.symbol].qty)
        if -order.qty <= held + 1e-12:
            return False
        reason = f"not sent: the position is already covered (holds {held:g}, exit {-order.qty:g})"
        self.ledger.mark_cancelled(order.client_order_id, reason)
        self.ledger.log_event("broker", f"{order.symbol} {reason}", "warning", time=self.now)
        self.pending_brackets.pop(order.symbol, None)
        return True

    def _settle(self, symbol: str, cid: str, deadline: float) -> dict[str, Any] | None:
        """Look an order of unknown fate up until its request expired on the exchange (the
        ``deadline``, monotonic: its send + ``recvWindow`` + a margin for clock skew)."""
        while True:
            found = self.lookup(symbol, cid)
            left = deadline - time.monotonic()
            if found is not None or left <= 0:
                return found
            self.calls.release()
            self.calls.sleep(min(0.25, left))

    def lookup_settled(self, order: LedgerOrder) -> dict[str, Any] | None:
        """The exchange's order for a ledger order; for one sent whose fate is unknown (its
        last send less than ``recvWindow`` + margin ago, e.g. by a process that died) keep
        looking until it can no longer execute — a restart never re-sends an order the
        exchange may still execute."""
        found = self.lookup(order.symbol, order.client_order_id)
        if found is not None or order.status is not OrderStatus.SUBMITTED:
            return found
        sent = self.ledger.get_order(order.client_order_id).submitted_at
        if sent is None:
            return None
        age = (pd.Timestamp.now(tz="UTC") - sent).total_seconds()
        left = self.recv_window_ms / 1000 + SETTLE_MARGIN - age
        if left <= 0:
            return None
        self.ledger.log_event(
            "broker",
            f"{order.symbol} order {order.client_order_id} of unknown fate: looked up for "
            f"{left:.1f} s more before it counts as never received",
            time=self.now,
        )
        return self._settle(order.symbol, order.client_order_id, time.monotonic() + left)

    def _rejected(self, cid: str, symbol: str, exc: Exception) -> bool:
        order = self.ledger.mark_rejected(cid, f"{type(exc).__name__}: {short(exc)}")
        self.ledger.log_event(
            "broker", f"{symbol} order {cid} rejected: {short(exc)}", "error", time=self.now
        )
        if order.type is OrderType.STOP:
            self.stops.pop(symbol, None)  # the local check guards the position instead
        else:
            self.pending_brackets.pop(symbol, None)
        return False

    def _resume_order(self, cid: str, status: OrderStatus) -> bool:
        """An intent already in the ledger (a bar redone after a restart)."""
        if status is OrderStatus.INTENT:
            return self._send(cid)
        if status is OrderStatus.SUBMITTED:
            found = self.lookup_settled(self.ledger.get_order(cid))
            if found is None:
                return self._send(cid)
            self.absorb(found)
        return status is not OrderStatus.REJECTED

    def lookup(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """The exchange's order with this client order id, or None if it has none."""
        try:
            found: dict[str, Any] = self.calls(
                "fetch_order", None, symbol, {"origClientOrderId": cid}
            )
        except ccxt.OrderNotFound:
            return None
        return found

    def absorb(self, order: Mapping[str, Any]) -> None:
        """Book what the exchange says about one of our orders: its id, new fills, its end."""
        cid = str(order.get("clientOrderId") or "")
        symbol = str(order["symbol"])
        ledger_order = self.ledger.get_order(cid)
        if ledger_order.status is OrderStatus.INTENT:
            self.ledger.mark_submitted(cid)
        self.ledger.mark_acknowledged(cid, str(order["id"]))
        filled = float(order.get("filled") or 0.0)
        if filled > 0:
            trades = [t for t in order.get("trades") or [] if t.get("id") is not None]
            if sum(float(t["amount"]) for t in trades) < filled * (1 - 1e-9):
                trades = self.calls("fetch_order_trades", order["id"], symbol)
            for trade in trades:
                self._record_trade(cid, trade, order.get("timestamp"))
        status = order.get("status")
        book = self.stops if ledger_order.type is OrderType.STOP else self.working
        if status == "open":
            book[symbol] = cid
            return
        if book.get(symbol) == cid:
            del book[symbol]
        if status == "closed" and filled > 0:
            self.ledger.mark_filled(cid, "the exchange reports the order filled")
        elif status in ("canceled", "cancelled", "expired", "rejected", "closed"):
            reason = f"the exchange reports the order {status}"
            self.ledger.mark_cancelled(cid, reason)
            if filled == 0:
                self.pending_brackets.pop(symbol, None)

    def _record_trade(self, cid: str, trade: Mapping[str, Any], fallback_ms: Any) -> None:
        symbol = str(trade["symbol"])
        rules = self.rules[symbol]
        amount, price = float(trade["amount"]), float(trade["price"])
        recorded = self.ledger.get_order(cid)
        side = 1.0 if recorded.qty > 0 else -1.0  # a create response's fills carry no side
        fee = trade.get("fee") or {}
        fee_cost, fee_ccy = float(fee.get("cost") or 0.0), fee.get("currency")
        qty, fee_quote = amount, 0.0
        if fee_ccy == rules.base:
            qty, fee_quote = (amount - fee_cost if side > 0 else amount), fee_cost * price
        elif fee_ccy == rules.quote:
            fee_quote = fee_cost
        elif fee_cost:
            self.ledger.log_event(
                "broker", f"fee of trade {trade['id']} in {fee_ccy}: not in the account's "
                f"equity (pay fees in {rules.base} or {rules.quote})", "warning",
            )  # fmt: skip
        stamp_ms = trade.get("timestamp") or fallback_ms  # a create response's fills have none
        stamp = pd.Timestamp(int(stamp_ms or 0), unit="ms", tz="UTC")
        reference = self.marks.get(symbol, price)
        liquidity = Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER
        fill = Fill(
            stamp, symbol, side * qty, price, fee_quote, abs(price - reference), liquidity, cid,
            recorded.reason,
        )  # fmt: skip
        if self.ledger.record_fill(fill, trade_id=f"{self.exchange.id}:{trade['id']}"):
            self._book(fill)

    def _book(self, fill: Fill) -> None:
        """A recorded fill into the in-memory account (cash, position, stops)."""
        symbol = fill.symbol
        before = self.positions[symbol]
        after = apply_fill(before, fill.qty, fill.price)
        self.positions[symbol] = after
        self.cash -= fill.qty * fill.price + fill.fee
        self.fills.append(fill)
        if after.qty <= 0 or self._dust(symbol, after.qty):
            self.brackets[symbol] = (math.nan, math.nan)
        elif before.qty <= 0 or fill.qty > 0:
            stop_loss, take_profit = self.pending_brackets.get(symbol, (None, None))
            avg = after.avg_price
            self.brackets[symbol] = (
                math.nan if stop_loss is None else avg * (1.0 - stop_loss),
                math.nan if take_profit is None else avg * (1.0 + take_profit),
            )

    def sync(self) -> None:
        """Poll every working order and book its new fills."""
        for symbol, cid in [*self.working.items(), *self.stops.items()]:
            found = self.lookup(symbol, cid)
            if found is None:
                raise BrokerError(f"working order {cid} on {symbol} is unknown to the exchange")
            self.absorb(found)

    def cancel_working(self, symbol: str, why: str) -> bool:
        return self._cancel(self.working, symbol, why)

    def cancel_stop(self, symbol: str, why: str) -> bool:
        return self._cancel(self.stops, symbol, why)

    def _cancel(self, book: dict[str, str], symbol: str, why: str) -> bool:
        """Cancel one of our open orders on the exchange; fills it had meanwhile are booked."""
        cid = book[symbol]
        order = self.ledger.get_order(cid)
        with contextlib.suppress(ccxt.OrderNotFound):  # closed meanwhile: the lookup books how
            self.calls("cancel_order", order.exchange_order_id, symbol)
        found = self.lookup(symbol, cid)
        if found is not None:
            self.absorb(found)
        book.pop(symbol, None)
        if self.ledger.get_order(cid).status.is_open:
            self.ledger.mark_cancelled(cid, why)
        return True


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
