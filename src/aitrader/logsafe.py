"""Secrets never reach a log line: a filter on the log handlers masks every known secret value.

Third-party libraries log what they send — ccxt's debug log prints request headers, the API key
among them — so masking at our own call sites is not enough; the filter sits on the handlers and
rewrites each record (message, arguments and exception text) before it is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from aitrader.live.records import Redactor

_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def short(exc: BaseException, limit: int = 200) -> str:
    """An exception's text on one line, at most ``limit`` characters, URLs without their query
    (no signature or parameters in logs and the ledger)."""
    text = scrub(str(exc))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str) -> str:
    """``text`` on one line with URLs stripped of their query (signatures, parameters)."""
    return _QUERY.sub(r"\1", text.replace("\n", " "))


class RedactingFilter(logging.Filter):
    """Masks the given secret values in a record's message and exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redactor.text(record.getMessage()), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, self.redactor.text(text)
        elif record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        return True


def install_redaction(secrets: Iterable[str]) -> None:
    """Put a :class:`RedactingFilter` for ``secrets`` on every handler of the root logger
    (replacing one installed before)."""
    values = [s for s in secrets if s]
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        if values:
            handler.addFilter(RedactingFilter(values))
