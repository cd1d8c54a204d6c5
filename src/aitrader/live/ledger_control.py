"""The ledger's control flags (``pause``, ``kill`` ...) and its runtime events (start,
reconnect, reconciliation, error ...): a mixin of :class:`aitrader.live.ledger.Ledger`, on the
transactions of :class:`~aitrader.live.ledger_session.LedgerSession`. Texts are masked by the
ledger's ``redact`` (invariant 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aitrader.live import ledger_sql as q
from aitrader.live import schema as t
from aitrader.live.ledger_reads import loads_payload as _loads
from aitrader.live.ledger_session import LedgerSession
from aitrader.live.records import (
    Event,
    Flag,
    LedgerError,
    Redactor,
    to_datetime,
    to_timestamp,
    utc_now,
)


class LedgerControl(LedgerSession):
    """Control flags and events; needs the ledger's ``redact``."""

    redact: Redactor
    _flags_seen: tuple[tuple[int, int], dict[str, Flag]] | None = None

    def set_flag(self, name: str, on: bool, reason: str = "") -> Flag:
        """Set a control flag (``pause``, ``kill`` ...) and log it as a ``control`` event."""
        now = utc_now()
        text = self.redact.text(reason)
        with self._writing() as conn:
            updated = conn.execute(
                t.flags.update()
                .where(t.flags.c.name == name)
                .values(on=on, reason=text, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(t.flags.insert().values(name=name, on=on, reason=text, updated_at=now))
            state = "on" if on else "off"
            self._event(conn, "control", f"flag {name} {state}", "warning", {"reason": text})
        self._flags_seen = None
        return Flag(name, on, text, pd.Timestamp(now))

    def flags(self) -> dict[str, Flag]:
        """Every control flag ever set, by name. Read before every bar, so on SQLite the rows
        are read again only when another connection committed since (``data_version``)."""
        with self._reading() as conn:
            version = self._version(conn)
            seen = self._flags_seen
            if version is not None and seen is not None and seen[0] == version:
                return dict(seen[1])
            rows = list(conn.execute(q.FLAGS))
        found = {
            r.name: Flag(r.name, bool(r.on), r.reason, to_timestamp(r.updated_at)) for r in rows
        }
        self._flags_seen = None if version is None else (version, found)
        return dict(found)

    def get_flag(self, name: str) -> Flag:
        with self._reading() as conn:
            row = conn.execute(sa.select(t.flags).where(t.flags.c.name == name)).first()
        if row is None:
            return Flag(name)
        return Flag(name, bool(row.on), row.reason, to_timestamp(row.updated_at))

    def log_event(
        self,
        kind: str,
        message: str,
        level: str = "info",
        payload: Mapping[str, Any] | None = None,
        time: pd.Timestamp | datetime | None = None,
    ) -> None:
        """A runtime event (start, reconnect, reconciliation, error ...) with details."""
        with self._writing() as conn:
            self._event(conn, kind, message, level, payload, time)

    def _event(
        self,
        conn: sa.Connection,
        kind: str,
        message: str,
        level: str,
        payload: Mapping[str, Any] | None,
        time: pd.Timestamp | datetime | None = None,
    ) -> None:
        row = {
            "time": to_datetime(time) if time is not None else utc_now(),
            **{"level": level, "kind": kind, "message": self.redact.text(message)},
            "payload": self.redact.json(payload),
        }
        conn.execute(q.EVENT_INSERT, row)

    def events(self, kind: str | None = None, limit: int = 1000) -> list[Event]:
        """The latest ``limit`` events (of one ``kind``), oldest first."""
        query = sa.select(t.events).order_by(t.events.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(t.events.c.kind == kind)
        with self._reading() as conn:
            rows = list(conn.execute(query))
        return [
            Event(_stamp(r.time), r.level, r.kind, r.message, _loads(r.payload))
            for r in reversed(rows)
        ]


def _stamp(value: datetime) -> pd.Timestamp:
    stamp = to_timestamp(value)
    if stamp is None:
        raise LedgerError("a required timestamp is missing in the ledger")
    return stamp
