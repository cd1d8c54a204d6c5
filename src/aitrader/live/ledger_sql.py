"""The ledger's statements, built once: each call binds its values as parameters, so a bar's
writes reuse compiled statements instead of building (and cache-keying) new ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from aitrader.live import schema as t

_p = sa.bindparam

ORDER_BY_CID = sa.select(t.orders).where(t.orders.c.client_order_id == _p("k_cid"))
CID_BY_KEY = sa.select(t.orders.c.client_order_id).where(t.orders.c.intent_key == _p("k_key"))
KEY_BY_CID = sa.select(t.orders.c.intent_key).where(t.orders.c.client_order_id == _p("k_cid"))
ORDER_INSERT = t.orders.insert()
ORDER_UPDATE = t.orders.update().where(t.orders.c.client_order_id == _p("k_cid"))

FILL_SEEN = sa.select(t.fills.c.id).where(t.fills.c.trade_id == _p("k_trade"))
FILL_INSERT = t.fills.insert()
POSITION_BY_SYMBOL = sa.select(t.positions).where(t.positions.c.symbol == _p("k_symbol"))
POSITION_INSERT = t.positions.insert()
POSITION_UPDATE = t.positions.update().where(t.positions.c.symbol == _p("k_symbol"))

FLAGS = sa.select(t.flags)
EVENT_INSERT = t.events.insert()
SIGNAL_INSERT = t.signals.insert()
SIGNAL_AT = (
    sa.select(t.signals.c.id)
    .where(t.signals.c.time == _p("k_time"), t.signals.c.symbol == _p("k_symbol"))
    .limit(1)
)
RISK_SEEN = sa.select(t.risk_decisions.c.id).where(t.risk_decisions.c.key == _p("k_key"))
RISK_INSERT = t.risk_decisions.insert()
EQUITY_INSERT = t.equity.insert()
STATE_VALUE = sa.select(t.state.c.value).where(t.state.c.name == _p("k_name"))
STATE_INSERT = t.state.insert()
STATE_UPDATE = t.state.update().where(t.state.c.name == _p("k_name"))

_EQUITY_SQL = "INSERT INTO equity (time, equity, cash, margin_used) VALUES (?, ?, ?, 0.0)"
_STATE_SQL = "UPDATE state SET value = ?, updated_at = ? WHERE name = ?"
_STAMPS: dict[str, Callable[[datetime], Any]] = {}


def _stamp(dialect: sa.Dialect) -> Callable[[datetime], Any]:
    """How SQLAlchemy stores a timestamp on this dialect (its DateTime bind processor)."""
    found = _STAMPS.get(dialect.name)
    if found is None:
        processor = t.equity.c.time.type.dialect_impl(dialect).bind_processor(dialect)
        found = _STAMPS[dialect.name] = processor or (lambda value: value)
    return found


def write_bar(
    conn: sa.Connection, time: datetime, equity: float, cash: float, name: str, text: str
) -> None:
    """The two writes every bar makes — the equity snapshot and the checkpoint document — on
    SQLite through the driver (SQLAlchemy's per-statement work would cost more than the
    writes), elsewhere through the statements above; values stored exactly as SQLAlchemy
    stores them, inside the connection's write transaction."""
    now = datetime.now(UTC)
    if conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        conn.execute(
            EQUITY_INSERT, {"time": time, "equity": equity, "cash": cash, "margin_used": 0.0}
        )
        if not conn.execute(
            STATE_UPDATE, {"k_name": name, "value": text, "updated_at": now}
        ).rowcount:
            conn.execute(STATE_INSERT, {"name": name, "value": text, "updated_at": now})
        return
    stamp = _stamp(conn.dialect)
    if not conn.in_transaction():
        conn.begin()  # BEGIN IMMEDIATE: the driver's statements below run inside it
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(_EQUITY_SQL, (stamp(time), float(equity), float(cash)))
        if not cursor.execute(_STATE_SQL, (text, stamp(now), name)).rowcount:
            conn.execute(STATE_INSERT, {"name": name, "value": text, "updated_at": now})
    finally:
        cursor.close()
