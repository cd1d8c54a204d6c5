"""Closed-bar feeds for the live runtime: stored bars replayed, or ccxt REST polling.

A feed yields one symbol's *closed* bars in strictly increasing time. The runner never sees a bar
in progress, so the decision path gets exactly what a backtest gets: the bar once it is final.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt
import numpy as np
import pandas as pd

from aitrader.data.schema import COLUMNS
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError

log = logging.getLogger(__name__)


class BarFeed(Protocol):
    """One symbol's closed bars, oldest first."""

    symbol: str

    def bars(self) -> AsyncIterator[Bar]: ...


class ReplayFeed:
    """Stored candles as closed bars; ``speed`` bars-durations per second of wall time
    (0: as fast as possible, still yielding to the event loop after each bar)."""

    def __init__(self, symbol: str, candles: pd.DataFrame, speed: float = 0.0) -> None:
        if speed < 0:
            raise ConfigError(f"replay speed must be ≥ 0, got {speed}")
        self.symbol, self.candles, self.speed = symbol, candles, speed

    def _pause(self) -> float:
        """Seconds between bars at ``speed`` (one bar duration divided by the speed)."""
        index = self.candles.index
        if self.speed == 0 or len(index) < 2:
            return 0.0
        step = pd.Timedelta(index[1] - index[0]).total_seconds()
        return step / self.speed

    async def bars(self) -> AsyncIterator[Bar]:
        values = self.candles.loc[:, list(COLUMNS)].to_numpy(np.float64)
        pause = self._pause()
        for stamp, row in zip(self.candles.index, values, strict=True):
            yield Bar(self.symbol, stamp, *map(float, row))
            await asyncio.sleep(pause)


@dataclass(frozen=True)
class PollingConfig:
    """How a :class:`PollingFeed` polls: interval, page size, retries on network errors."""

    interval: float = 5.0  # seconds between polls once caught up
    limit: int = 500  # candles per request (pages until caught up)
    max_backoff: float = 60.0  # seconds, cap of the exponential backoff on errors
    max_errors: int = 0  # consecutive errors before giving up (0: never)


class PollingFeed:
    """Closed bars from ccxt ``fetch_ohlcv`` polling (REST).

    Starts after ``since`` (the first bar emitted opens after it; None: the latest closed bar),
    pages forward until caught up, so bars missed during an outage are back-filled in order before
    anything newer. A bar counts as closed once ``open + timeframe ≤ now``; ``now_ms`` defaults to
    the exchange's clock. Network errors back off exponentially with jitter.
    """

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        config: PollingConfig | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.config = config or PollingConfig()
        self.step_ms = int(exchange.parse_timeframe(timeframe) * 1000)
        self.now_ms = now_ms or exchange.milliseconds
        self.last_ms = None if since is None else int(pd.Timestamp(since).value // 1_000_000)
        self.errors = 0

    async def bars(self) -> AsyncIterator[Bar]:
        while True:
            batch = await self._poll()
            for bar in batch:
                yield bar
            if not batch or len(batch) < self.config.limit - 1:
                await asyncio.sleep(self.config.interval)

    async def _poll(self) -> list[Bar]:
        """The closed bars after the last one emitted (one page), or [] after an error."""
        since = None if self.last_ms is None else self.last_ms + 1
        try:
            rows = await asyncio.to_thread(
                self.exchange.fetch_ohlcv, self.symbol, self.timeframe, since, self.config.limit
            )
        except ccxt.NetworkError as exc:
            await self._back_off(exc)
            return []
        self.errors = 0
        return self._closed(rows)

    def _closed(self, rows: list[list[Any]]) -> list[Bar]:
        now = self.now_ms()
        closed = [r for r in rows if int(r[0]) + self.step_ms <= now]
        if self.last_ms is None and closed:
            closed = closed[-1:]  # no start given: begin with the latest closed bar
        out = []
        for r in sorted(closed, key=lambda r: int(r[0])):
            stamp = int(r[0])
            if self.last_ms is not None and stamp <= self.last_ms:
                continue
            out.append(Bar(self.symbol, pd.Timestamp(stamp, unit="ms", tz="UTC"), *_ohlcv(r)))
            self.last_ms = stamp
        return out

    async def _back_off(self, exc: Exception) -> None:
        self.errors += 1
        if self.config.max_errors and self.errors >= self.config.max_errors:
            raise exc
        delay = min(self.config.max_backoff, 2.0 ** min(self.errors, 16) * 0.5)
        delay *= 0.5 + random.random()
        log.warning(
            "fetch_ohlcv failed; retrying",
            extra={"symbol": self.symbol, "errors": self.errors, "delay": delay},
        )
        await asyncio.sleep(delay)


def _ohlcv(row: list[Any]) -> tuple[float, float, float, float, float]:
    o, h, lo, c, v = (float(x) if x is not None else 0.0 for x in row[1:6])
    return o, h, lo, c, v
