"""Notices from a run's ledger: a watcher follows what the runtime appends (fills, risk verdicts,
events) and turns it into notices for a :class:`~aitrader.ops.notify.Notifier` — fills, trades
closed with their P&L (the engine's trade book), risk rejects, control actions (pause, resume,
kill switch), warnings and errors (feed stalls, reconnects, the circuit breaker).

It reads the ledger from its own thread, so the trading loop never waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aitrader.engine.tradebook import BookTrade, TradeBook
from aitrader.engine.types import Fill
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.ops.notify import Notice
from aitrader.ops.texts import daily_text, status_text
from aitrader.ops.views import ERROR_LEVELS, ledger_fill

log = logging.getLogger(__name__)

BATCH = 1000


def _told(event: dict[str, Any]) -> bool:
    """Whether the event's writer sent its own notice (``"notified": true`` in its payload, e.g.
    the drift job), so that it is not told twice."""
    payload = event.get("payload")
    return isinstance(payload, dict) and payload.get("notified") is True


def fill_text(fill: Fill) -> str:
    side = "BUY" if fill.qty > 0 else "SELL"
    return (
        f"{side} {abs(fill.qty):.6g} {fill.symbol} at {fill.price:,.2f} "
        f"(fee {fill.fee:,.2f}, {fill.reason})"
    )


def trade_text(trade: BookTrade) -> str:
    side = "long" if trade.side > 0 else "short"
    return (
        f"trade closed: {trade.symbol} {side} {trade.entry_qty:.6g}, "
        f"P&L {trade.pnl:+,.2f} net of costs ({trade.exit_reason})"
    )


@dataclass(frozen=True)
class Reports:
    """Notices on a clock: a heartbeat every ``heartbeat_seconds`` (0: none) and a daily
    report when the run's bars pass into a new UTC day."""

    heartbeat_seconds: float = 0.0
    daily: bool = True
    clock: Callable[[], float] = time.monotonic


class LedgerWatcher:
    """Follows one ledger; :meth:`poll` hands the notices of the rows appended since the last
    poll to ``notify``. Starts at the ledger's end (``from_start``: at its beginning)."""

    def __init__(
        self,
        ledger: Ledger,
        notify: Callable[[Notice], bool],
        from_start: bool = False,
        reports: Reports | None = None,
    ) -> None:
        self.ledger, self.notify = ledger, notify
        self.reports = reports or Reports()
        self.beats, self.last_beat = 0, self.reports.clock()
        self.day = ledger.equity_summary().last_time
        self.day = None if self.day is None else self.day.normalize()
        self.book = TradeBook()
        self.kill = self._kill_switch() is not None
        self.cursor = {"fills": 0, "events": 0, "risk_decisions": 0}
        if not from_start:
            ends = ledger.last_row_ids()
            for row in self._rows("fills", until=ends["fills"]):  # open trades' entries
                self.book.add(ledger_fill(row))
            self.cursor = ends

    def _rows(self, table: str, until: int | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            batch = self.ledger.rows_after(table, self.cursor[table], BATCH)
            batch = [r for r in batch if until is None or r["id"] <= until]
            if not batch:
                return found
            found += batch
            self.cursor[table] = batch[-1]["id"]

    def poll(self) -> int:
        """Notices for everything appended since the last poll; how many were handed on."""
        notices: list[Notice] = []
        for row in self._rows("fills"):
            fill = ledger_fill(row)
            notices.append(Notice("fill", fill_text(fill), key=f"fill:{row['trade_id']}"))
            closed = self.book.add(fill)
            if closed is not None:
                notices.append(Notice("trade", trade_text(closed), key=f"trade:{row['trade_id']}"))
        for row in self._rows("risk_decisions"):
            if row["action"] == "reject":
                text = f"risk rejected {row['symbol']} {row['requested_qty']:+.6g}: {row['reason']}"
                notices.append(Notice("risk", text))
        for row in self._rows("events"):
            if (row["kind"] == "control" or row["level"] in ERROR_LEVELS) and not _told(row):
                text = f"{row['level']} {row['kind']}: {row['message']}"
                notices.append(Notice(row["kind"], text))
        notices += self._kill_notice() + self._scheduled()
        for notice in notices:
            self.notify(notice)
        return len(notices)

    def _kill_switch(self) -> str | None:
        """The reason of the risk manager's kill switch when engaged, else None."""
        state = LedgerRiskStateStore(self.ledger).load()
        return state.kill_reason if state is not None and state.kill_switch else None

    def _kill_notice(self) -> list[Notice]:
        """The kill switch engaged by the risk manager itself (maximum drawdown); one engaged
        by the kill flag is already told by its control event."""
        reason = self._kill_switch()
        engaged, self.kill = reason is not None and not self.kill, reason is not None
        if not engaged or str(reason).startswith("kill flag"):
            return []
        return [Notice("kill", f"kill switch engaged: {reason}", key=f"kill:{reason}")]

    def _scheduled(self) -> list[Notice]:
        """The heartbeat when due; the report of the day the bars just left."""
        found: list[Notice] = []
        every, now = self.reports.heartbeat_seconds, self.reports.clock()
        if every > 0 and now - self.last_beat >= every:
            self.beats, self.last_beat = self.beats + 1, now
            text = f"heartbeat: {status_text(self.ledger)}"
            found.append(Notice("heartbeat", text, key=f"heartbeat:{self.beats}"))
        last = self.ledger.equity_summary().last_time
        day = None if last is None else last.normalize()
        if self.reports.daily and day is not None and self.day is not None and day > self.day:
            text = f"daily report: {daily_text(self.ledger, self.day)}"
            found.append(Notice("daily", text, key=f"daily:{self.day:%Y-%m-%d}"))
        if day is not None:
            self.day = day
        return found

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set; errors are logged, never
        raised (a notification problem must not end anything else)."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                log.warning("ledger watcher failed", extra={"error": f"{type(exc).__name__}"})
            stop.wait(interval)
