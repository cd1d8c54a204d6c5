"""Read-only queries on the ledger for monitoring (the API, metrics, dashboards): pages of fills
with filters, the latest signals and risk verdicts, counts, and summaries that a monitor can
afford on every request without loading whole tables.

A mixin of :class:`aitrader.live.ledger.Ledger`; each call is one read transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aitrader.live import schema as t
from aitrader.live.db import read_transaction
from aitrader.live.records import to_datetime, to_timestamp


@dataclass(frozen=True)
class FillFilter:
    """Which fills: by symbol, side (1 buy, -1 sell) and time range (inclusive), then a page
    (``limit`` rows after skipping ``offset``, oldest first; no limit: all)."""

    symbol: str | None = None
    side: int | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class EquitySummary:
    """The equity snapshots in brief: how many, the first and the last, and the peak."""

    points: int
    first_time: pd.Timestamp | None
    first_equity: float | None
    last_time: pd.Timestamp | None
    last_equity: float | None
    last_cash: float | None
    peak_equity: float | None


class LedgerReads:
    """Read queries for monitoring; needs ``engine`` (the ledger's). Following appended rows
    is in :class:`LedgerFollow` (defined below, mixed into the ledger too)."""

    engine: sa.Engine

    def fill_count(self, where: FillFilter | None = None) -> int:
        """How many fills match ``where`` (its page ignored)."""
        query = sa.select(sa.func.count()).select_from(t.fills)
        query = _filter_fills(query, where or FillFilter())
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar() or 0)

    def latest_equity(self, limit: int) -> pd.DataFrame:
        """The latest ``limit`` equity snapshots, oldest first, indexed by time."""
        query = sa.select(t.equity).order_by(t.equity.c.id.desc()).limit(limit)
        with read_transaction(self.engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)][::-1]
        frame = pd.DataFrame(rows, columns=["id", "time", "equity", "cash", "margin_used"])
        frame.index = pd.DatetimeIndex([to_timestamp(v) for v in frame["time"]], name="time")
        return frame.drop(columns=["id", "time"])

    def equity_summary(self) -> EquitySummary:
        """Count, first, last and peak of the equity snapshots in one read."""
        e = t.equity.c
        f = sa.func
        stats = sa.select(f.count(), f.min(e.id), f.max(e.id), f.max(e.equity))
        with read_transaction(self.engine) as conn:
            points, first_id, last_id, peak = conn.execute(stats).one()
            if not points:
                return EquitySummary(0, None, None, None, None, None, None)
            rows = conn.execute(sa.select(t.equity).where(e.id.in_([first_id, last_id])))
            by_id = {r.id: r for r in rows}
        first, last = by_id[first_id], by_id[last_id]
        return EquitySummary(
            int(points),
            to_timestamp(first.time),
            float(first.equity),
            to_timestamp(last.time),
            float(last.equity),
            float(last.cash),
            float(peak),
        )

    def latest_signals(self, limit: int, symbol: str | None = None) -> pd.DataFrame:
        """The latest ``limit`` recorded signals (of ``symbol``), oldest first: ``time, symbol,
        target, payload`` (payload: the dict the policy stored with the target)."""
        query = sa.select(t.signals).order_by(t.signals.c.id.desc()).limit(limit)
        if symbol is not None:
            query = query.where(t.signals.c.symbol == symbol)
        with read_transaction(self.engine) as conn:
            rows = list(conn.execute(query))[::-1]
        return pd.DataFrame(
            {
                "time": [to_timestamp(r.time) for r in rows],
                "symbol": [r.symbol for r in rows],
                "target": [float(r.target) for r in rows],
                "payload": [loads_payload(r.payload) for r in rows],
            }
        )

    def decisions(self, limit: int, symbol: str | None = None) -> pd.DataFrame:
        """The latest ``limit`` per-decision records (of ``symbol``), oldest first: ``time,
        symbol, strategy, target, price, latency_ms, info`` (info: ``Target.info`` as a dict;
        target NaN: no decision)."""
        d = t.decisions.c
        query = sa.select(t.decisions).order_by(d.id.desc()).limit(limit)
        if symbol is not None:
            query = query.where(d.symbol == symbol)
        with read_transaction(self.engine) as conn:
            rows = list(conn.execute(query))[::-1]
        nan = float("nan")
        return pd.DataFrame(
            {
                "time": [to_timestamp(r.time) for r in rows],
                "symbol": [r.symbol for r in rows],
                "strategy": [r.strategy for r in rows],
                "target": [nan if r.target is None else float(r.target) for r in rows],
                "price": [nan if r.price is None else float(r.price) for r in rows],
                "latency_ms": [float(r.latency_ms) for r in rows],
                "info": [loads_payload(r.info) for r in rows],
            }
        )

    def latency_histogram(self, bounds: Sequence[float]) -> tuple[list[int], float]:
        """Decision latencies: cumulative counts at or below each of ``bounds`` (ms, rising)
        followed by the total count, and their sum (ms), in one read."""
        d = t.decisions.c
        # One latency per bar: the rows of a bar share it.
        per_bar = sa.select(d.time, sa.func.max(d.latency_ms).label("ms")).group_by(d.time)
        bar = per_bar.subquery()
        counts = [sa.func.sum(sa.case((bar.c.ms <= b, 1), else_=0)) for b in bounds]
        query = sa.select(*counts, sa.func.count(), sa.func.sum(bar.c.ms))
        with read_transaction(self.engine) as conn:
            found = conn.execute(query).one()
        values = [int(v or 0) for v in found[:-1]]
        return values, float(found[-1] or 0.0)

    def latest_risk_decisions(self, limit: int) -> pd.DataFrame:
        """The latest ``limit`` risk verdicts, oldest first (columns as ``risk_decisions``)."""
        columns = ["time", "symbol", "action", "requested_qty", "approved_qty", "reason"]
        columns += ["intent", "key"]
        r = t.risk_decisions.c
        query = sa.select(*[r[c] for c in columns]).order_by(r.id.desc()).limit(limit)
        with read_transaction(self.engine) as conn:
            rows = [dict(x._mapping) for x in conn.execute(query)][::-1]
        frame = pd.DataFrame(rows, columns=columns)
        frame["time"] = [to_timestamp(v) for v in frame["time"]]
        return frame

    def risk_action_counts(self) -> dict[str, int]:
        """How many risk verdicts of each action (``accept``, ``resize``, ``reject``)."""
        r = t.risk_decisions.c
        query = sa.select(r.action, sa.func.count()).group_by(r.action)
        with read_transaction(self.engine) as conn:
            return {str(action): int(n) for action, n in conn.execute(query)}

    def row_counts(self) -> dict[str, int]:
        """Rows in ``orders``, ``fills``, ``signals`` and ``events``, in one read."""
        tables = {"orders": t.orders, "fills": t.fills, "signals": t.signals, "events": t.events}
        with read_transaction(self.engine) as conn:
            return {
                name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
                for name, table in tables.items()
            }

    def event_counts(self) -> dict[tuple[str, str], int]:
        """How many events of each ``(kind, level)``."""
        e = t.events.c
        query = sa.select(e.kind, e.level, sa.func.count()).group_by(e.kind, e.level)
        with read_transaction(self.engine) as conn:
            return {(str(k), str(lv)): int(n) for k, lv, n in conn.execute(query)}

    def count_events(self, contains: str, levels: Sequence[str] | None = None) -> int:
        """Events whose message contains ``contains`` (case-insensitive), of ``levels``."""
        e = t.events.c
        query = sa.select(sa.func.count()).where(e.message.ilike(f"%{contains}%"))
        if levels is not None:
            query = query.where(e.level.in_(list(levels)))
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar() or 0)


FOLLOWED = {"fills": t.fills, "events": t.events, "risk_decisions": t.risk_decisions}
"""Tables a watcher follows by row id (rows are only ever appended)."""


class LedgerFollow:
    """Reads for a watcher that follows the ledger as rows are appended."""

    engine: sa.Engine

    def last_row_ids(self) -> dict[str, int]:
        """The highest row id of each followed table (0 when empty)."""
        with read_transaction(self.engine) as conn:
            return {
                name: int(conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0)
                for name, table in FOLLOWED.items()
            }

    def rows_after(self, table: str, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of ``table`` with an id above ``after``, oldest first (times
        as UTC Timestamps, event payloads as dicts)."""
        source = FOLLOWED[table]
        query = sa.select(source).where(source.c.id > after).order_by(source.c.id).limit(limit)
        with read_transaction(self.engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["time"] = to_timestamp(row["time"])
            if table == "events":
                row["payload"] = loads_payload(row["payload"])
        return rows


def _filter_fills(query: Any, where: FillFilter) -> Any:
    f = t.fills.c
    if where.symbol is not None:
        query = query.where(f.symbol == where.symbol)
    if where.side is not None:
        query = query.where(f.qty > 0 if where.side > 0 else f.qty < 0)
    if where.since is not None:
        query = query.where(f.time >= to_datetime(where.since))
    if where.until is not None:
        query = query.where(f.time <= to_datetime(where.until))
    return query


def page_fills(query: Any, where: FillFilter) -> Any:
    """``query`` on the fills table narrowed to ``where`` and its page."""
    query = _filter_fills(query, where)
    if where.limit is not None:
        query = query.limit(where.limit)
    return query.offset(where.offset) if where.offset else query


def loads_payload(text: str) -> dict[str, Any]:
    """A stored JSON payload as a dict (a non-dict value under ``value``)."""
    loaded = json.loads(text)
    return loaded if isinstance(loaded, dict) else {"value": loaded}
