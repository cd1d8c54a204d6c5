"""The ledger's tables (current shape) and the ordered migrations that build them.

Each migration is a function of a connection, run inside one transaction with the row it adds
to ``schema_version``. Migrations 1 and 2 create tables from the definitions below (minus the
columns a later migration adds); a future change to an existing table must be a new migration
(``ALTER TABLE``), and must first freeze a copy of the old definition into the migrations that
create that table, so an old database always migrates through the same steps. A test checks that
the migrated schema equals these definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

TIME = sa.DateTime(timezone=True)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", TIME, nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_order_id", sa.String(64), nullable=False, unique=True),
    sa.Column("intent_key", sa.String(200), nullable=False, unique=True),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("qty", sa.Float, nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("limit_price", sa.Float),
    sa.Column("stop_price", sa.Float),
    sa.Column("time_in_force", sa.String(8), nullable=False),
    sa.Column("reduce_only", sa.Boolean, nullable=False),
    sa.Column("target_fraction", sa.Float),
    sa.Column("stop_loss", sa.Float),
    sa.Column("take_profit", sa.Float),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("exchange_order_id", sa.String(64)),
    sa.Column("filled_qty", sa.Float, nullable=False),
    sa.Column("avg_fill_price", sa.Float, nullable=False),
    sa.Column("intent_at", TIME, nullable=False),
    sa.Column("submitted_at", TIME),
    sa.Column("acknowledged_at", TIME),
    sa.Column("closed_at", TIME),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Column("error", sa.Text),
)

fills = sa.Table(
    "fills",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trade_id", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "client_order_id",
        sa.String(64),
        sa.ForeignKey("orders.client_order_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("time", TIME, nullable=False),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("qty", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("fee", sa.Float, nullable=False),
    sa.Column("slippage", sa.Float, nullable=False),
    sa.Column("liquidity", sa.String(8), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("recorded_at", TIME, nullable=False),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("symbol", sa.String(40), primary_key=True),
    sa.Column("qty", sa.Float, nullable=False),
    sa.Column("avg_price", sa.Float, nullable=False),
    sa.Column("realised_pnl", sa.Float, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("on", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", TIME, nullable=False, index=True),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

equity = sa.Table(
    "equity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", TIME, nullable=False, index=True),
    sa.Column("equity", sa.Float, nullable=False),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("margin_used", sa.Float, nullable=False),
)

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", TIME, nullable=False, index=True),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("target", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

risk_decisions = sa.Table(
    "risk_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", TIME, nullable=False, index=True),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("requested_qty", sa.Float, nullable=False),
    sa.Column("approved_qty", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("intent", sa.String(40)),  # why the intent was made: signal, kill_switch ...
    sa.Column("key", sa.String(200), unique=True),  # idempotency key (a bar redone: no repeat)
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", TIME, nullable=False, index=True),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("strategy", sa.String(60), nullable=False),
    sa.Column("target", sa.Float),  # signed fraction of equity; NULL: no decision
    sa.Column("price", sa.Float),  # the bar's close the decision was made at
    sa.Column("latency_ms", sa.Float, nullable=False),  # the bar's decision path, milliseconds
    sa.Column("info", sa.Text, nullable=False),  # Target.info as JSON (probabilities ...)
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # bar time|symbol: once
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)


def _column(column: sa.Column[Any]) -> sa.Column[Any]:
    """A detached copy of ``column`` for a migration's own MetaData."""
    keys = [sa.ForeignKey(fk.target_fullname) for fk in column.foreign_keys]
    return sa.Column(
        column.name,
        column.type,
        *keys,
        primary_key=column.primary_key,
        nullable=column.nullable,
        unique=column.unique,
        index=column.index,
    )


def _v1_core(conn: sa.Connection) -> None:
    """Orders, fills, positions, control flags and runtime events (without ``orders.error``)."""
    frozen = sa.MetaData()
    for table in (orders, fills, positions, flags, events):
        columns = [_column(c) for c in table.columns if not (table is orders and c.name == "error")]
        sa.Table(table.name, frozen, *columns)
    frozen.create_all(conn)


_V3_RISK_COLUMNS = ("intent", "key")


def _v2_accounting(conn: sa.Connection) -> None:
    """Equity snapshots, signals, risk decisions (without ``intent`` and ``key``), persisted
    state; ``orders.error``."""
    frozen = sa.MetaData()
    for table in (equity, signals, risk_decisions, state):
        columns = [
            _column(c)
            for c in table.columns
            if not (table is risk_decisions and c.name in _V3_RISK_COLUMNS)
        ]
        sa.Table(table.name, frozen, *columns)
    frozen.create_all(conn)
    conn.execute(sa.text("ALTER TABLE orders ADD COLUMN error TEXT"))


def _v3_risk_decision_keys(conn: sa.Connection) -> None:
    """``risk_decisions.intent`` and a unique ``risk_decisions.key``: a verdict recorded under
    a key is stored once, also when its bar is redone after a crash."""
    conn.execute(sa.text("ALTER TABLE risk_decisions ADD COLUMN intent VARCHAR(40)"))
    conn.execute(sa.text("ALTER TABLE risk_decisions ADD COLUMN key VARCHAR(200)"))
    conn.execute(sa.text("CREATE UNIQUE INDEX ix_risk_decisions_key ON risk_decisions (key)"))


def _v4_decisions(conn: sa.Connection) -> None:
    """Per-decision records: target, price, latency and the strategy's explanation."""
    frozen = sa.MetaData()
    sa.Table(decisions.name, frozen, *[_column(c) for c in decisions.columns])
    frozen.create_all(conn)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "orders, fills, positions, flags, events", _v1_core),
    Migration(2, "equity, signals, risk decisions, state; orders.error", _v2_accounting),
    Migration(3, "risk decisions: intent, unique key", _v3_risk_decision_keys),
    Migration(4, "decisions: target, price, latency, info per bar and symbol", _v4_decisions),
)
CURRENT_VERSION = MIGRATIONS[-1].version
