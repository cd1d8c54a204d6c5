"""A short-lived cache of rendered answers, so that many clients polling ``/status`` and
``/metrics`` cost one ledger read per ``ttl`` seconds, not one per request. A control call
clears it, so an operator sees their own change at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class TtlCache:
    """Values by key, each recomputed when older than ``ttl`` seconds (0: never cached)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._values: dict[Hashable, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def fresh(self, key: Hashable) -> bytes | None:
        """The value under ``key`` if it is younger than ``ttl``, else None."""
        now = self._clock()
        with self._lock:
            held = self._values.get(key)
        return held[1] if held is not None and now - held[0] < self.ttl else None

    def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The fresh value under ``key``, or ``compute()`` stored under it."""
        hit = self.fresh(key)
        if hit is not None:
            return hit
        now = self._clock()
        value = compute()
        if self.ttl > 0:
            with self._lock:
                self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
