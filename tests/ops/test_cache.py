"""The answer cache: reused within its ttl, recomputed after it, cleared on demand."""

from __future__ import annotations

from aitrader.ops.cache import TtlCache


def test_values_are_reused_within_the_ttl_and_recomputed_after() -> None:
    now = [100.0]
    cache = TtlCache(1.0, clock=lambda: now[0])
    computed: list[int] = []

    def compute() -> bytes:
        computed.append(1)
        return f"v{len(computed)}".encode()

    assert cache.fresh("status") is None
    assert cache.get("status", compute) == b"v1"
    now[0] += 0.9
    assert cache.fresh("status") == b"v1"
    assert cache.get("status", compute) == b"v1"
    assert cache.get("metrics", compute) == b"v2"  # keys are apart
    now[0] += 0.2
    assert cache.get("status", compute) == b"v3"
    cache.clear()
    assert cache.get("status", compute) == b"v4"


def test_a_zero_ttl_never_caches() -> None:
    cache = TtlCache(0.0, clock=lambda: 5.0)
    answers = iter([b"a", b"b"])
    assert cache.get("k", lambda: next(answers)) == b"a"
    assert cache.get("k", lambda: next(answers)) == b"b"
