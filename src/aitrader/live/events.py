"""Log records that an operator must find in the ledger, not only on stderr: the feeds'
websocket reconnects, fallbacks to REST and polling retries become ledger events while a run
is going (:func:`recorded`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aitrader.live.ledger import Ledger
from aitrader.logsafe import scrub

FEEDS = "aitrader.feeds"
"""The logger every bar feed logs under (a venue's feeds use a child: ``aitrader.feeds.ccxt``)."""

EXTRAS = ("symbol", "failures", "errors", "delay", "retry", "error")
"""Fields of a record's ``extra`` that go into the event's text (in this order)."""


class LedgerEvents(logging.Handler):
    """Writes each record it handles to the ledger as an event of ``kind``."""

    def __init__(self, ledger: Ledger, kind: str) -> None:
        super().__init__(logging.WARNING)
        self.ledger, self.kind = ledger, kind

    def emit(self, record: logging.LogRecord) -> None:
        try:
            details = [
                f"{name}={_value(getattr(record, name))}"
                for name in EXTRAS
                if getattr(record, name, None) is not None
            ]
            text = record.getMessage() + (f" ({', '.join(details)})" if details else "")
            level = "warning" if record.levelno >= logging.WARNING else "info"
            self.ledger.log_event(self.kind, scrub(text), level)
        except Exception:  # a log record must never break the run
            self.handleError(record)


def _value(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


@contextmanager
def recorded(ledger: Ledger, logger: str = FEEDS, kind: str = "feed") -> Iterator[None]:
    """While inside, ``logger``'s records (INFO and up; its children's too: every venue's
    feeds) are ledger events of ``kind``."""
    target = logging.getLogger(logger)
    handler = LedgerEvents(ledger, kind)
    target.addHandler(handler)
    previous = target.level
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)
