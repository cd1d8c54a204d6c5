"""Failure guards for the live runtime: retry backoff, a circuit breaker and a feed watchdog.

Pure bookkeeping with injectable clocks and randomness, so they are deterministic in tests and
carry no I/O: the runner decides what to do (pause, log, degrade) when they fire.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

__all__ = ["CircuitBreaker", "Watchdog", "backoff_delay"]

_BELOW_1_5 = math.nextafter(1.5, 0.0)


def backoff_delay(
    attempt: int,
    base: float = 0.5,
    cap: float = 60.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (>= 1).

    Exponential ``base * 2**(attempt-1)`` capped at ``cap``, times a jitter factor in
    ``[0.5, 1.5)`` so that many clients do not retry in lockstep.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must be >= 0, got base={base}, cap={cap}")
    # Clamp the exponent so huge attempt counts cannot overflow float.
    exponential = base * 2.0 ** min(attempt - 1, 1023)
    factor = min(0.5 + rng(), _BELOW_1_5)  # 0.5 + 0.99999... rounds to 1.5 in floats
    return min(exponential, cap) * factor


def _describe(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        name = type(error).__name__
        return f"{name}: {text}" if text else name
    return error


class CircuitBreaker:
    """Trips after ``max_errors`` failures within ``window`` seconds with no success between.

    ``success()`` resets the count; once tripped it stays tripped until ``reset()``.
    """

    def __init__(
        self,
        max_errors: int = 5,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_errors < 1:
            raise ValueError(f"max_errors must be >= 1, got {max_errors}")
        if window <= 0:
            raise ValueError(f"window must be > 0, got {window}")
        self.max_errors = max_errors
        self.window = window
        self._clock = clock
        self._errors: deque[tuple[float, str]] = deque()
        self._tripped = False
        self._reason = ""

    @property
    def tripped(self) -> bool:
        return self._tripped

    @property
    def reason(self) -> str:
        """The errors that tripped the breaker (or the recent ones), summarised in one line."""
        if self._reason:
            return self._reason
        return self._summary()

    @property
    def errors(self) -> int:
        """Consecutive failures currently counted inside the window."""
        self._expire(self._clock())
        return len(self._errors)

    def success(self) -> None:
        """A call went through: forget the consecutive failures."""
        self._errors.clear()

    def failure(self, error: BaseException | str) -> bool:
        """Record a failure; True exactly when this failure trips the breaker."""
        now = self._clock()
        self._expire(now)
        self._errors.append((now, _describe(error)))
        if self._tripped or len(self._errors) < self.max_errors:
            return False
        self._tripped = True
        self._reason = self._summary()
        return True

    def reset(self) -> None:
        """Close the breaker again and forget all failures."""
        self._errors.clear()
        self._tripped = False
        self._reason = ""

    def _expire(self, now: float) -> None:
        while self._errors and now - self._errors[0][0] > self.window:
            self._errors.popleft()

    def _summary(self) -> str:
        if not self._errors:
            return ""
        counts: dict[str, int] = {}
        for _, text in self._errors:
            counts[text] = counts.get(text, 0) + 1
        parts = [f"{text} (x{n})" if n > 1 else text for text, n in counts.items()]
        return f"{len(self._errors)} errors in {self.window:g}s: " + "; ".join(parts)


class Watchdog:
    """Tracks the last heartbeat of each named feed and reports the quiet ones."""

    def __init__(self, stall_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        if stall_after <= 0:
            raise ValueError(f"stall_after must be > 0, got {stall_after}")
        self.stall_after = stall_after
        self._clock = clock
        self._last: dict[str, float] = {}

    def beat(self, name: str) -> None:
        """A feed delivered something (a bar, a tick, a keep-alive)."""
        self._last[name] = self._clock()

    def watch(self, name: str) -> None:
        """Start watching ``name`` from now without waiting for its first beat."""
        self._last.setdefault(name, self._clock())

    def forget(self, name: str) -> None:
        """Stop watching ``name`` (a feed that finished normally)."""
        self._last.pop(name, None)

    def stalled(self) -> list[str]:
        """Names with no beat for longer than ``stall_after``, sorted."""
        now = self._clock()
        return sorted(n for n, t in self._last.items() if now - t > self.stall_after)


TASK_EXIT_SECONDS = 10.0
"""How long a finished run waits for its cancelled feed and watchdog tasks to end."""


async def finish(
    tasks: Sequence[asyncio.Task[object]], timeout: float = TASK_EXIT_SECONDS
) -> list[object]:
    """Cancel ``tasks`` and collect how they ended (results or exceptions, as ``gather`` with
    ``return_exceptions``); a task that does not end within ``timeout`` (a feed blocked in a
    venue's client that swallows the cancellation) is left behind with a warning, so a run that
    has finished its bars always returns."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        logging.getLogger(__name__).warning("task %s did not end when cancelled", task.get_name())
    return [_outcome(t) for t in tasks if t not in pending]


def _outcome(task: asyncio.Task[object]) -> object:
    if task.cancelled():
        return asyncio.CancelledError()
    error = task.exception()
    return error if error is not None else task.result()
