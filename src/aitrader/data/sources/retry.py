"""Retries with exponential backoff, jitter and ``Retry-After``; transient is decided by type."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from aitrader.config import DownloadConfig
from aitrader.errors import TransientSourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_AFTER_CEILING = 300.0
"""Longest server-requested wait honoured (seconds; backoff_max if larger); beyond it we stop."""


class RetryableError(Exception):
    """Raised by an attempt that may succeed when repeated; carries the server's Retry-After."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class Backoff:
    """Exponential backoff with equal jitter, capped at ``config.backoff_max``."""

    config: DownloadConfig
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); never below Retry-After."""
        capped = min(self.config.backoff_max, self.config.backoff_initial * (2.0**attempt))
        jittered = capped / 2 + self.rng.uniform(0, capped / 2)
        return max(jittered, retry_after or 0.0)

    def call(self, attempt_fn: Callable[[], T], what: str) -> T:
        """Run ``attempt_fn``; on RetryableError wait and repeat up to ``max_retries`` times."""
        ceiling = max(RETRY_AFTER_CEILING, self.config.backoff_max)
        for attempt in range(self.config.max_retries + 1):
            try:
                return attempt_fn()
            except RetryableError as exc:
                if attempt >= self.config.max_retries:
                    raise TransientSourceError(
                        f"{what}: giving up after {attempt + 1} attempts: {exc}"
                    ) from exc
                if exc.retry_after is not None and exc.retry_after > ceiling:
                    raise TransientSourceError(
                        f"{what}: server asks to wait {exc.retry_after:.0f} s (Retry-After), "
                        f"longer than {ceiling:.0f} s; try again later: {exc}"
                    ) from exc
                wait = self.delay(attempt, exc.retry_after)
                log.warning(
                    "%s: transient error (attempt %d), retrying in %.1fs: %s",
                    what,
                    attempt + 1,
                    wait,
                    _short(str(exc)),
                    extra={
                        "what": what,
                        "attempt": attempt + 1,
                        "wait_s": round(wait, 3),
                        "retry_after": exc.retry_after,
                        "error": str(exc),
                    },
                )
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


def _short(text: str, limit: int = 200) -> str:
    """First line of an error message, cut to ``limit`` characters for the log line."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
