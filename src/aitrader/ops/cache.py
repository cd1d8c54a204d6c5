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

    def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        now = self._clock()
        with self._lock:
            held = self._values.get(key)
        if held is not None and now - held[0] < self.ttl:
            return held[1]
        value = compute()
        if self.ttl > 0:
            with self._lock:
                self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
