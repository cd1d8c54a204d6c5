"""The ledger: every order, fill, position change, signal, risk decision and control action,
written before it is acted on (invariant 3), in one transaction per call.

Synchronous on purpose: each call is a short transaction on a local SQLite file (WAL), cheap
enough to call from the event loop thread, and safe to share between threads. Secret values
given to the ledger (and any ``SecretStr``) are masked in every text it writes (invariant 5).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aitrader.engine.types import Fill, Order, Position
from aitrader.live import ledger_sql as q
from aitrader.live import schema as t
from aitrader.live.db import create_ledger_engine, migrate
from aitrader.live.ledger_control import LedgerControl
from aitrader.live.ledger_reads import FillFilter, LedgerFollow, LedgerReads, page_fills
from aitrader.live.ledger_reads import loads_payload as _loads
from aitrader.live.records import (
    TRANSITIONS,
    LedgerError,
    LedgerOrder,
    OrderStatus,
    Redactor,
    to_datetime,
    to_timestamp,
    utc_now,
)
from aitrader.risk.intents import RiskDecision
from aitrader.risk.state import RiskState
from aitrader.strategy.base import DecisionRow

Decisions = tuple[pd.Timestamp, str, list[DecisionRow], float]
"""A bar's decisions as :meth:`Ledger.record_decisions` takes them: time, strategy, rows, ms."""

log = logging.getLogger(__name__)

QTY_TOLERANCE = 1e-9
"""Relative tolerance when comparing filled and ordered quantities."""

PAUSE = "pause"
KILL = "kill"
DRIFT = "drift"
"""State document the drift check writes: ``{"size_multiplier", "reason", ...}``; the runner
applies the multiplier to new entries through the risk manager until the next retrain."""


def drift_scale(state: Mapping[str, Any] | None) -> tuple[float, str]:
    """The entry-size multiplier and its reason in a ``drift`` state document (none: 1)."""
    document = state or {}
    return float(document.get("size_multiplier", 1.0)), str(document.get("reason", ""))


class Ledger(LedgerControl, LedgerReads, LedgerFollow):
    """The trading ledger on one database (a SQLite path or any SQLAlchemy URL)."""

    def __init__(self, target: str | Path, secrets: Iterable[str] = ()) -> None:
        self.engine = create_ledger_engine(target)
        self._drift_seen: tuple[tuple[int, int], dict[str, Any] | None] | None = None
        self.redact = Redactor(secrets)
        self.version = migrate(self.engine)

    def close(self) -> None:
        self._release()
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- orders ---------------------------------------------------------------------------

    def record_intent(
        self, order: Order, intent_key: str | None = None, time: pd.Timestamp | None = None
    ) -> str:
        """Store an order intent before anything is sent; returns its client order id.

        Idempotent: an ``intent_key`` seen before (default: the client order id) returns the
        order already stored and creates nothing.
        """
        key = intent_key or order.client_order_id
        if order.qty == 0 or not math.isfinite(order.qty):
            raise LedgerError(f"intent {key}: the ledger records concrete quantities, got qty=0")
        with self._writing() as conn:
            existing = conn.execute(q.CID_BY_KEY, {"k_key": key}).scalar()
            if existing is not None:
                return str(existing)
            clash = conn.execute(q.KEY_BY_CID, {"k_cid": order.client_order_id}).scalar()
            if clash is not None:
                raise LedgerError(
                    f"client order id {order.client_order_id} already belongs to intent {clash}"
                )
            conn.execute(q.ORDER_INSERT, _intent_row(order, key, time))
        return order.client_order_id

    def mark_submitted(self, client_order_id: str) -> LedgerOrder:
        """Record that the order is about to be sent: ``submitted_at`` is the time of its
        latest send (until when the exchange may still execute it); a closed order stays."""
        with self._writing() as conn:
            order = self._order(conn, client_order_id)
            if order.status in (OrderStatus.INTENT, OrderStatus.SUBMITTED):
                self._set_status(conn, order, OrderStatus.SUBMITTED, submitted_at=utc_now())
            return self._order(conn, client_order_id)

    def mark_acknowledged(self, client_order_id: str, exchange_order_id: str) -> LedgerOrder:
        """Record the exchange's order id; idempotent, also after fills were recorded."""
        with self._writing() as conn:
            order = self._order(conn, client_order_id)
            if order.status is OrderStatus.INTENT:
                raise LedgerError(f"order {client_order_id} acknowledged but never submitted")
            known = order.exchange_order_id
            if known is not None and known != str(exchange_order_id):
                raise LedgerError(
                    f"order {client_order_id}: exchange id {exchange_order_id} != stored {known}"
                )
            values: dict[str, Any] = {"exchange_order_id": str(exchange_order_id)}
            if order.acknowledged_at is None:
                values["acknowledged_at"] = utc_now()
            if order.status is OrderStatus.SUBMITTED:
                self._set_status(conn, order, OrderStatus.ACKNOWLEDGED, **values)
            else:
                self._update(conn, client_order_id, **values)
            return self._order(conn, client_order_id)

    def mark_cancelled(self, client_order_id: str, reason: str = "") -> LedgerOrder:
        """The order is closed without (further) fills; idempotent."""
        return self._close(client_order_id, OrderStatus.CANCELLED, reason)

    def mark_rejected(self, client_order_id: str, reason: str) -> LedgerOrder:
        """The exchange (or a pre-trade check) refused the order; idempotent."""
        return self._close(client_order_id, OrderStatus.REJECTED, reason)

    def mark_filled(self, client_order_id: str, reason: str = "") -> LedgerOrder:
        """The exchange reports the order complete although the recorded fills fall short of
        its quantity (fills recorded net of a commission taken in the asset bought); needs at
        least one fill; idempotent."""
        order = self.get_order(client_order_id)
        if order.filled_qty == 0:
            raise LedgerError(f"order {client_order_id} marked filled without any fill")
        return self._close(client_order_id, OrderStatus.FILLED, reason)

    def _close(self, client_order_id: str, status: OrderStatus, reason: str) -> LedgerOrder:
        with self._writing() as conn:
            order = self._order(conn, client_order_id)
            if order.status is not status:
                self._set_status(
                    conn, order, status, closed_at=utc_now(), error=self.redact.text(reason)
                )
            return self._order(conn, client_order_id)

    def get_order(self, client_order_id: str) -> LedgerOrder:
        with self._reading() as conn:
            return self._order(conn, client_order_id)

    def find_order(self, client_order_id: str) -> LedgerOrder | None:
        with self._reading() as conn:
            row = conn.execute(q.ORDER_BY_CID, {"k_cid": client_order_id}).first()
        return None if row is None else LedgerOrder.from_row(row._mapping)

    def open_orders(self, symbol: str | None = None) -> list[LedgerOrder]:
        """Orders not yet filled, cancelled or rejected (intents included), oldest first."""
        open_states = [s.value for s in OrderStatus if s.is_open]
        return self.orders(symbol, statuses=open_states)

    def orders(
        self, symbol: str | None = None, statuses: Iterable[str] | None = None
    ) -> list[LedgerOrder]:
        query = sa.select(t.orders).order_by(t.orders.c.id)
        if symbol is not None:
            query = query.where(t.orders.c.symbol == symbol)
        if statuses is not None:
            query = query.where(t.orders.c.status.in_(list(statuses)))
        with self._reading() as conn:
            return [LedgerOrder.from_row(r._mapping) for r in conn.execute(query)]

    # -- fills and positions --------------------------------------------------------------

    def record_fill(self, fill: Fill, trade_id: str) -> bool:
        """Store an execution of a known, submitted order and update the order and the
        position in the same transaction. A ``trade_id`` seen before is ignored (returns False).
        """
        with self._writing() as conn:
            seen = conn.execute(q.FILL_SEEN, {"k_trade": str(trade_id)}).first()
            if seen is not None:
                return False
            order = self._order(conn, fill.client_order_id)
            _check_fill(order, fill, trade_id)
            conn.execute(q.FILL_INSERT, _fill_row(fill, trade_id))
            self._apply_to_order(conn, order, fill)
            self._apply_to_position(conn, fill)
        return True

    def fills(
        self, client_order_id: str | None = None, where: FillFilter | None = None
    ) -> pd.DataFrame:
        """Recorded fills, oldest first (``trade_id`` plus the engine's FILL_COLUMNS); ``where``
        narrows them (symbol, side, time range) and takes one page."""
        query = sa.select(t.fills).order_by(t.fills.c.id)
        if client_order_id is not None:
            query = query.where(t.fills.c.client_order_id == client_order_id)
        if where is not None:
            query = page_fills(query, where)
        with self._reading() as conn:
            frame = pd.DataFrame([dict(r._mapping) for r in conn.execute(query)])
        columns = ["trade_id", "time", "symbol", "side", "qty", "price", "fee", "slippage"]
        columns += ["liquidity", "client_order_id", "reason"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame["time"] = [to_timestamp(v) for v in frame["time"]]
        frame["side"] = [1 if q > 0 else -1 for q in frame["qty"]]
        frame["qty"] = frame["qty"].abs()
        return frame[columns].reset_index(drop=True)

    def positions(self) -> dict[str, Position]:
        """Net positions built from the recorded fills (flat ones included)."""
        with self._reading() as conn:
            rows = conn.execute(sa.select(t.positions).order_by(t.positions.c.symbol))
            return {r.symbol: Position(r.symbol, r.qty, r.avg_price, r.realised_pnl) for r in rows}

    def _apply_to_order(self, conn: sa.Connection, order: LedgerOrder, fill: Fill) -> None:
        filled = order.filled_qty + fill.qty
        notional = order.avg_fill_price * abs(order.filled_qty) + fill.price * abs(fill.qty)
        values: dict[str, Any] = {
            "filled_qty": filled,
            "avg_fill_price": notional / abs(filled) if filled else 0.0,
        }
        if order.status is OrderStatus.CANCELLED:
            self._update(conn, order.client_order_id, **values)
            return
        complete = abs(filled) >= abs(order.qty) * (1 - QTY_TOLERANCE)
        if complete:
            self._set_status(conn, order, OrderStatus.FILLED, closed_at=utc_now(), **values)
        else:
            self._set_status(conn, order, OrderStatus.PARTIALLY_FILLED, **values)

    def _apply_to_position(self, conn: sa.Connection, fill: Fill) -> None:
        row = conn.execute(q.POSITION_BY_SYMBOL, {"k_symbol": fill.symbol}).first()
        before = (
            Position(fill.symbol)
            if row is None
            else Position(fill.symbol, row.qty, row.avg_price, row.realised_pnl)
        )
        after = apply_fill(before, fill.qty, fill.price)
        values = {
            "qty": after.qty,
            "avg_price": after.avg_price,
            "realised_pnl": after.realised_pnl,
            "updated_at": utc_now(),
        }
        if row is None:
            conn.execute(q.POSITION_INSERT, {"symbol": fill.symbol, **values})
        else:
            conn.execute(q.POSITION_UPDATE, {"k_symbol": fill.symbol, **values})

    # -- order helpers --------------------------------------------------------------------

    def _order(self, conn: sa.Connection, client_order_id: str) -> LedgerOrder:
        row = conn.execute(q.ORDER_BY_CID, {"k_cid": client_order_id}).first()
        if row is None:
            raise LedgerError(f"no order with client order id {client_order_id!r} in the ledger")
        return LedgerOrder.from_row(row._mapping)

    def _set_status(
        self, conn: sa.Connection, order: LedgerOrder, status: OrderStatus, **values: Any
    ) -> None:
        if status is not order.status and status not in TRANSITIONS[order.status]:
            raise LedgerError(
                f"order {order.client_order_id}: {order.status.value} -> {status.value} "
                "is not a valid transition"
            )
        self._update(conn, order.client_order_id, status=status.value, **values)

    def _update(self, conn: sa.Connection, client_order_id: str, **values: Any) -> None:
        conn.execute(q.ORDER_UPDATE, {"k_cid": client_order_id, "updated_at": utc_now(), **values})

    # -- signals, decisions, accounting ---------------------------------------------------

    def record_signal(
        self,
        time: pd.Timestamp,
        symbol: str,
        target: float,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """The policy's target position (and e.g. probabilities) for one closed bar."""
        with self._writing() as conn:
            row = {"time": to_datetime(time), "symbol": symbol, "target": float(target)}
            conn.execute(q.SIGNAL_INSERT, {**row, "payload": self.redact.json(payload)})

    def has_signal(self, time: pd.Timestamp, symbol: str) -> bool:
        """Whether a signal of ``symbol`` at bar ``time`` is on record (a bar redone)."""
        with self._reading() as conn:
            found = conn.execute(q.SIGNAL_AT, {"k_time": to_datetime(time), "k_symbol": symbol})
            return found.first() is not None

    def record_decisions(
        self,
        time: pd.Timestamp,
        strategy: str,
        rows: Iterable[DecisionRow],
        latency_ms: float,
        conn: sa.Connection | None = None,
    ) -> int:
        """The strategy's decision at one bar, a row per symbol: target fraction (NaN: none),
        the bar's close, the decision path's latency and ``Target.info`` (JSON). Idempotent per
        bar time and symbol (a bar redone after a crash stores nothing twice); in ``conn``'s
        transaction when given (the runner's commit of the bar), else in its own. Returns the
        number of rows stored."""
        rows = list(rows)
        if not rows:
            return 0
        if conn is None:
            with self._writing() as own:
                return self.record_decisions(time, strategy, rows, latency_ms, own)
        stamp, stored = pd.Timestamp(time), 0
        for symbol, target, price, info in rows:
            key = f"{stamp.isoformat()}|{symbol}"
            if conn.execute(sa.select(t.decisions.c.id).where(t.decisions.c.key == key)).first():
                continue
            conn.execute(
                t.decisions.insert().values(
                    **{"time": to_datetime(stamp), "symbol": symbol, "strategy": strategy},
                    target=float(target) if math.isfinite(target) else None,
                    price=float(price) if math.isfinite(price) else None,
                    latency_ms=float(latency_ms),
                    info=self.redact.json(info),
                    key=key,
                )
            )
            stored += 1
        return stored

    def record_risk_decision(self, decision: RiskDecision, key: str | None = None) -> bool:
        """What the risk manager said about one intent.

        Idempotent under a ``key`` (e.g. bar time, symbol and intent): a key seen before stores
        nothing and returns False. Without a key every call stores a row.
        """
        intent = decision.intent.reason if decision.intent is not None else None
        with self._writing() as conn:
            if key is not None and conn.execute(q.RISK_SEEN, {"k_key": key}).first():
                return False
            row = {
                **{"time": to_datetime(decision.time), "symbol": decision.symbol},
                **{"action": decision.action, "requested_qty": float(decision.requested)},
                **{"approved_qty": float(decision.approved), "intent": intent, "key": key},
                "reason": self.redact.text(decision.reason),
            }
            conn.execute(q.RISK_INSERT, row)
        return True

    def risk_decisions(self) -> pd.DataFrame:
        """Recorded risk verdicts, oldest first: ``time, symbol, action, requested_qty,
        approved_qty, reason, intent, key``."""
        columns = ["time", "symbol", "action", "requested_qty", "approved_qty", "reason"]
        columns += ["intent", "key"]
        query = sa.select(*[t.risk_decisions.c[c] for c in columns]).order_by(t.risk_decisions.c.id)
        with self._reading() as conn:
            frame = pd.DataFrame([dict(r._mapping) for r in conn.execute(query)], columns=columns)
        frame["time"] = [to_timestamp(v) for v in frame["time"]]
        return frame

    def record_equity(
        self, time: pd.Timestamp, equity: float, cash: float, margin_used: float = 0.0
    ) -> None:
        with self._writing() as conn:
            conn.execute(
                t.equity.insert().values(
                    time=to_datetime(time), equity=equity, cash=cash, margin_used=margin_used
                )
            )

    def equity_curve(self) -> pd.DataFrame:
        """Equity snapshots indexed by time: ``equity, cash, margin_used``."""
        with self._reading() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(t.equity))]
        frame = pd.DataFrame(rows, columns=["id", "time", "equity", "cash", "margin_used"])
        frame.index = pd.DatetimeIndex([to_timestamp(v) for v in frame["time"]], name="time")
        return frame.drop(columns=["id", "time"])

    def save_state(self, name: str, value: Mapping[str, Any]) -> None:
        """Persist a small JSON document (e.g. the risk state) under ``name``."""
        with self._writing() as conn:
            self._state(conn, name, self.redact.json(value))
        self._drift_seen = None

    def record_bar(
        self,
        time: pd.Timestamp,
        equity: float,
        cash: float,
        name: str,
        state: Mapping[str, Any],
        decisions: Decisions | None = None,
    ) -> str:
        """A processed bar: its equity snapshot, the run's checkpoint (state document ``name``)
        and the strategy's ``decisions`` (:meth:`record_decisions`' arguments) in one
        transaction, so they can never be out of step; returns the checkpoint as stored (JSON,
        secrets masked) — what a restart reads back."""
        text = self.redact.json(state)
        with self._writing() as conn:
            q.write_bar(conn, to_datetime(time), equity, cash, name, text)
            if decisions is not None:
                self.record_decisions(*decisions, conn=conn)
        return text

    def _state(self, conn: sa.Connection, name: str, text: str) -> None:
        row = {"value": text, "updated_at": utc_now()}
        if not conn.execute(q.STATE_UPDATE, {"k_name": name, **row}).rowcount:
            conn.execute(q.STATE_INSERT, {"name": name, **row})

    def drift(self) -> dict[str, Any] | None:
        """The drift job's latest verdict (state ``drift``). Read before every bar, so on SQLite
        it is read again only when another connection committed since, as :meth:`flags`."""
        with self._reading() as conn:
            version = self._version(conn)
            seen = self._drift_seen
            if version is not None and seen is not None and seen[0] == version:
                return seen[1]
            text = conn.execute(q.STATE_VALUE, {"k_name": DRIFT}).scalar()
        state = None if text is None else _loads(text)
        self._drift_seen = None if version is None else (version, state)
        return state

    def load_state(self, name: str) -> dict[str, Any] | None:
        with self._reading() as conn:
            text = conn.execute(q.STATE_VALUE, {"k_name": name}).scalar()
        return None if text is None else _loads(text)


def apply_fill(position: Position, qty: float, price: float) -> Position:
    """``Position.apply`` that also handles a fill crossing zero (close, then open the rest)."""
    if position.qty != 0 and (qty > 0) != (position.qty > 0) and abs(qty) > abs(position.qty):
        closed = position.apply(-position.qty, price)
        return closed.apply(qty + position.qty, price)
    return position.apply(qty, price)


def _check_fill(order: LedgerOrder, fill: Fill, trade_id: str) -> None:
    where = f"fill {trade_id} of order {order.client_order_id}"
    if order.status in (OrderStatus.INTENT, OrderStatus.REJECTED):
        raise LedgerError(f"{where}: the order is {order.status.value}, it cannot fill")
    if fill.symbol != order.symbol:
        raise LedgerError(f"{where}: symbol {fill.symbol} != order symbol {order.symbol}")
    if fill.qty == 0 or (fill.qty > 0) != (order.qty > 0):
        raise LedgerError(f"{where}: qty {fill.qty} has the wrong side for qty {order.qty}")
    if abs(order.filled_qty + fill.qty) > abs(order.qty) * (1 + QTY_TOLERANCE):
        raise LedgerError(
            f"{where}: overfill ({order.filled_qty} + {fill.qty} exceeds {order.qty})"
        )


def _intent_row(order: Order, key: str, time: pd.Timestamp | None) -> dict[str, Any]:
    now = utc_now()
    return {
        "client_order_id": order.client_order_id,
        "intent_key": key,
        "symbol": order.symbol,
        "qty": float(order.qty),
        "type": order.type.value,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "time_in_force": order.time_in_force.value,
        "reduce_only": order.reduce_only,
        "target_fraction": order.target_fraction,
        "stop_loss": order.stop_loss,
        "take_profit": order.take_profit,
        "reason": order.reason,
        "status": OrderStatus.INTENT.value,
        "filled_qty": 0.0,
        "avg_fill_price": 0.0,
        "intent_at": to_datetime(time) if time is not None else now,
        "updated_at": now,
    }


def _fill_row(fill: Fill, trade_id: str) -> dict[str, Any]:
    return {
        "trade_id": str(trade_id),
        "client_order_id": fill.client_order_id,
        "time": to_datetime(fill.time),
        "symbol": fill.symbol,
        "qty": float(fill.qty),
        "price": float(fill.price),
        "fee": float(fill.fee),
        "slippage": float(fill.slippage),
        "liquidity": fill.liquidity.value,
        "reason": fill.reason,
        "recorded_at": utc_now(),
    }


class LedgerRiskStateStore:
    """The risk state (kill switch, peaks, day counters) kept in the ledger: implements
    :class:`aitrader.risk.state.RiskStateStore`."""

    NAME = "risk"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def load(self) -> RiskState | None:
        data = self.ledger.load_state(self.NAME)
        return None if data is None else RiskState.from_json(data)

    def save(self, state: RiskState) -> None:
        self.ledger.save_state(self.NAME, state.to_json())
