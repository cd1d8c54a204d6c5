"""What a run is: its fingerprint (a resumed run must match it) and, when a ledger holds
another run, which settings differ — named, so the operator knows what changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aitrader.data.timeframes import timeframe_seconds
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed_policy import ArrayFeed, TargetFeed
from aitrader.errors import ConfigError
from aitrader.live.feeds import BarFeed, ReplayFeed
from aitrader.risk.config import RiskConfig


def run_fingerprint(
    feeds: Sequence[BarFeed],
    targets: TargetFeed,
    broker_config: BrokerConfig,
    risk: RiskConfig,
    config: Mapping[str, Any] | None = None,
) -> str:
    """A hash of what determines a run: symbols, broker and risk settings, ``config``, the
    replayed candles and precomputed targets (where the feeds hold them)."""
    described = {
        **{"symbols": [f.symbol for f in feeds], "config": dict(config or {})},
        **{"broker": repr(broker_config), "risk": repr(risk)},
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for feed in feeds:
        if isinstance(feed, ReplayFeed):
            digest.update(pd.util.hash_pandas_object(feed.candles).to_numpy().tobytes())
    if isinstance(targets, ArrayFeed):
        for values in (targets.fraction, targets.stop_price, targets.stop_loss):
            digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(targets.take_profit, dtype=np.float64).tobytes())
        if targets.plan is not None:  # trade plans
            digest.update(np.ascontiguousarray(targets.plan, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def live_fingerprint(
    symbols: Sequence[str], risk: RiskConfig, config: Mapping[str, Any] | None
) -> str:
    """What a resumed run on live bars (live, or paper on an exchange's bars) must match:
    symbols, risk settings and the run's description (every setting that changes what it
    does: strategy, capital, broker settings)."""
    described = {"symbols": list(symbols), "risk": repr(risk), "config": dict(config or {})}
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(held: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``name: ledger X, now Y`` for every setting of a run description that differs."""
    keys = sorted(set(held) | set(now))
    missing = "(not set)"
    return [
        f"{k}: ledger {held.get(k, missing)}, now {now.get(k, missing)}"
        for k in keys
        if json.dumps(held.get(k), default=str, sort_keys=True)
        != json.dumps(now.get(k), default=str, sort_keys=True)
    ]


def refuse_other_run(
    state: Mapping[str, Any] | None, fingerprint: str, config: Mapping[str, Any]
) -> None:
    """Raise :class:`ConfigError` naming what differs when the ledger's checkpoint
    (``state``) belongs to another run than ``fingerprint``; nothing when it is this run or
    there is none."""
    if state is None or state.get("fingerprint") == fingerprint:
        return
    held = state.get("config") or {}
    diff = differences(held, config) or [
        "the risk or cost settings (config file) or the replayed data"
    ]
    raise ConfigError(
        f"the ledger holds another run ({'; '.join(diff)}): resume it with the same settings, "
        "or use a new ledger file"
    )


def stall_after_of(feeds: Sequence[BarFeed]) -> float | None:
    """3 × the longest bar duration (wall seconds) among the feeds, None when none is known."""
    known = [s for s in (_bar_seconds(f) for f in feeds) if s is not None and s > 0]
    return 3.0 * max(known) if known else None


def _bar_seconds(feed: BarFeed) -> float | None:
    if isinstance(feed, ReplayFeed):
        index = feed.candles.index
        if feed.speed == 0 or len(index) < 2:
            return None  # as fast as possible: no wall-clock rhythm to watch
        return pd.Timedelta(index[1] - index[0]).total_seconds() / feed.speed
    step_ms = getattr(feed, "step_ms", None)  # the polling and websocket feeds
    if isinstance(step_ms, int | float) and step_ms > 0:
        return float(step_ms) / 1000.0
    timeframe = getattr(feed, "timeframe", None)
    if isinstance(timeframe, str):
        try:
            return float(timeframe_seconds(timeframe))
        except ConfigError:  # an unknown timeframe string: no default
            return None
    return None
