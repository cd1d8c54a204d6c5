"""What one run of the live runtime did, as the CLI and the tests report it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class RunSummary:
    """What one run did: bars decided, orders and fills recorded, the final account, and the
    health a user checks (paused, feed status, transient errors, circuit breaker, kill switch)."""

    bars: int
    orders: int
    fills: int
    equity: float
    cash: float
    last_bar: pd.Timestamp | None
    dropped: int  # bar times seen for only some symbols (never decided)
    resumed_from: int = 0  # bars already processed when this run resumed (0: a fresh run)
    resumed_after: pd.Timestamp | None = None  # the last bar processed before resuming
    paused: bool = False  # trading paused at the end (PAUSE flag, or the breaker tripped)
    status: str = "ok"  # feeds: ok, or degraded while one is stalled
    errors: int = 0  # transient errors retried (or given up on) during this run
    tripped: bool = False  # the circuit breaker tripped during this run
    kill_switch: bool = False  # the RiskManager's kill switch is engaged
    skipped: int = 0  # bars given up after the breaker tripped (not processed)
    reconciling: str | None = None  # paused, reconciling: why (the venue is down, a mismatch)
