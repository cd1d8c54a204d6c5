"""Backoff, circuit breaker and watchdog: pure bookkeeping driven by a fake clock."""

from __future__ import annotations

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitrader.live.guard import CircuitBreaker, Watchdog, backoff_delay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(
    attempt=st.integers(1, 5000),
    base=st.floats(0.0, 10.0),
    cap=st.floats(0.0, 600.0),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
)
def test_backoff_is_exponential_capped_and_jittered(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    delay = backoff_delay(attempt, base, cap, rng=lambda: jitter)
    raw = min(base * 2.0 ** min(attempt - 1, 1023), cap)
    assert 0.5 * raw <= delay <= 1.5 * raw
    assert delay <= 1.5 * cap


def test_backoff_jitter_factor_stays_below_one_and_a_half() -> None:
    assert backoff_delay(1, 1.0, 60.0, rng=lambda: 0.9999999999999999) < 1.5


def test_backoff_doubles_and_rejects_attempt_zero() -> None:
    middle = [backoff_delay(n, 0.5, 60.0, rng=lambda: 0.5) for n in range(1, 10)]
    assert middle == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_delay(3, rng=lambda: 0.0) == 1.0  # jitter factor 0.5
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0)


def test_breaker_trips_after_n_failures_exactly_once() -> None:
    breaker = CircuitBreaker(max_errors=3, window=60.0, clock=Clock())
    assert not breaker.failure(ccxt.NetworkError("connection reset"))
    assert not breaker.failure("timeout")
    assert not breaker.tripped
    assert breaker.failure(TimeoutError("read timed out"))
    assert breaker.tripped
    assert not breaker.failure("again")  # already tripped: this one does not trip it
    reason = breaker.reason
    assert "3 errors" in reason and "NetworkError: connection reset" in reason
    assert "TimeoutError: read timed out" in reason
    breaker.reset()
    assert not breaker.tripped and breaker.errors == 0


def test_breaker_resets_on_success() -> None:
    breaker = CircuitBreaker(max_errors=2, clock=Clock())
    for _ in range(5):
        assert not breaker.failure("flaky")
        breaker.success()
    assert not breaker.tripped
    assert not breaker.failure("flaky")
    assert breaker.failure("flaky")


def test_breaker_forgets_failures_older_than_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(max_errors=3, window=10.0, clock=clock)
    breaker.failure("a")
    breaker.failure("b")
    clock.now += 11
    assert not breaker.failure("c")
    assert breaker.errors == 1
    clock.now += 1
    breaker.failure("c")
    assert breaker.failure("c")
    assert "c (x3)" in breaker.reason


def test_watchdog_reports_quiet_feeds() -> None:
    clock = Clock()
    dog = Watchdog(stall_after=5.0, clock=clock)
    dog.beat("BTC/USDT")
    dog.watch("ETH/USDT")
    clock.now += 4
    dog.beat("BTC/USDT")
    assert dog.stalled() == []
    clock.now += 2
    assert dog.stalled() == ["ETH/USDT"]
    clock.now += 4
    assert dog.stalled() == ["BTC/USDT", "ETH/USDT"]
    dog.beat("ETH/USDT")
    dog.forget("BTC/USDT")
    assert dog.stalled() == []
