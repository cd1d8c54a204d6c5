"""Closed bars from a ccxt exchange: REST polling (``fetch_ohlcv``) or ccxt.pro websocket klines
with a REST fallback. Each implements the runtime's :class:`~aitrader.live.feeds.BarFeed`: one
symbol's *closed* bars in strictly increasing time.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt
import pandas as pd

from aitrader.engine.types import Bar
from aitrader.errors import ConfigError

log = logging.getLogger("aitrader.feeds.ccxt")  # recorded in the ledger while a run goes


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
    anything newer. A bar counts as closed once a later bar is listed or ``open + timeframe ≤
    now``; ``now_ms`` defaults to ccxt's (local) clock. Network errors back off exponentially with
    jitter. Works with a sync ``ccxt`` exchange (called in a thread) or an async ``ccxt.pro`` one.
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
        return await self._page() or []

    async def _page(self) -> list[Bar] | None:
        """The closed bars after the last one emitted (one page), or None after an error."""
        since = None if self.last_ms is None else self.last_ms + 1
        fetch, limit = self.exchange.fetch_ohlcv, self.config.limit
        try:
            if inspect.iscoroutinefunction(fetch):
                rows = await fetch(self.symbol, self.timeframe, since, limit)
            else:
                rows = await asyncio.to_thread(fetch, self.symbol, self.timeframe, since, limit)
        except ccxt.NetworkError as exc:
            await self._back_off(exc)
            return None
        self.errors = 0
        return self._closed(rows)

    def _closed(self, rows: list[list[Any]]) -> list[Bar]:
        now = self.now_ms()
        newest = max((int(r[0]) for r in rows), default=0)
        closed = [r for r in rows if int(r[0]) < newest or int(r[0]) + self.step_ms <= now]
        if self.last_ms is None and closed:
            closed = closed[-1:]  # no start given: begin with the latest closed bar
        out = []
        for r in sorted(closed, key=lambda r: int(r[0])):
            stamp = int(r[0])
            if self.last_ms is not None and stamp <= self.last_ms:
                continue
            out.append(_bar(self.symbol, r))
            self.last_ms = stamp
        return out

    async def _back_off(self, exc: Exception) -> None:
        self.errors += 1
        if self.config.max_errors and self.errors >= self.config.max_errors:
            raise exc
        delay = _jittered(self.errors, 0.5, self.config.max_backoff)
        log.warning(
            "fetch_ohlcv failed; retrying",
            extra={"symbol": self.symbol, "errors": self.errors, "delay": delay},
        )
        await asyncio.sleep(delay)


@dataclass(frozen=True)
class WebsocketConfig:
    """How a :class:`WebsocketFeed` reconnects and when it falls back to REST polling."""

    max_ws_failures: int = 5  # consecutive failed (re)connects before falling back to REST
    backoff: float = 0.5  # seconds, base of the exponential reconnect backoff (with jitter)
    max_backoff: float = 30.0  # seconds, cap of that backoff
    ws_retry: float = 60.0  # seconds on REST between attempts to get the websocket back
    idle_poll: float | None = 60.0  # seconds without a kline before a REST check (None: never)
    polling: PollingConfig = field(default_factory=PollingConfig)  # REST back-fill and fallback


Update = list[list[Any]] | BaseException


CLOSE_TIMEOUT = 5.0
"""Seconds a websocket feed waits for the exchange's sessions to close when it ends."""


class WebsocketFeed:
    """Closed bars from a ``ccxt.pro`` exchange's ``watch_ohlcv`` (websocket klines).

    Starts like :class:`PollingFeed` (REST back-fill after ``since``; None: the latest closed bar),
    then streams. ccxt does not pass on a kline's final flag, so a bar counts as closed once a
    later bar's kline arrives (Binance sends the final update of a bar right before the first one
    of the next); the exchange's stream is the clock, never the local one. After a dropped or
    failed websocket it reconnects with exponential backoff and jitter, and before anything newer
    it back-fills the closed bars missed meanwhile from REST. After ``max_ws_failures``
    consecutive failures it polls REST (logging a warning) and tries the websocket again every
    ``ws_retry`` seconds, going back to streaming once klines flow again. A stream silent for
    ``idle_poll`` seconds gets a REST check too (a stalled connection is caught by ccxt's
    keep-alive only after minutes).

    ``bars()`` may be cancelled at any await; ``close()`` closes the exchange's connections.
    """

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        config: WebsocketConfig | None = None,
    ) -> None:
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.config = config or WebsocketConfig()
        if self.config.max_ws_failures < 1:
            raise ConfigError(f"max_ws_failures must be ≥ 1, got {self.config.max_ws_failures}")
        polling = self.config.polling
        self.rest = PollingFeed(exchange, symbol, timeframe, since, polling, self._clock)
        self.step_ms = self.rest.step_ms
        self.stream_ms = 0  # open time of the newest bar the stream has shown (the clock)
        self.pending: dict[int, list[Any]] = {}  # latest kline of each bar not yet emitted
        self.failures = 0  # consecutive websocket failures
        self.stream_bars = self.rest_bars = self.reconnects = self.fallbacks = 0
        self._gap = False  # bars may have been missed: REST back-fill before the next emit
        self._probe_at = 0.0
        self._updates: asyncio.Queue[Update] = asyncio.Queue()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def last_ms(self) -> int | None:
        """Open time (ms) of the last bar emitted."""
        return self.rest.last_ms

    @property
    def on_rest(self) -> bool:
        """Whether the feed has fallen back to REST polling."""
        return self.failures >= self.config.max_ws_failures

    async def bars(self) -> AsyncIterator[Bar]:
        """Closed bars, oldest first, never twice; runs until cancelled or the exchange closes."""
        try:
            async for bar in self._catch_up():
                yield bar
            self._watch()
            while True:
                update = await self._next_update()
                if update is None:  # a REST poll is due (on REST, or the stream is idle)
                    async for bar in self._catch_up():
                        yield bar
                    if self._watcher is None and self._loop_time() >= self._probe_at:
                        self._watch()  # try the websocket again
                elif isinstance(update, ccxt.ExchangeClosedByUser):
                    return
                elif isinstance(update, BaseException):
                    await self._failed(update)
                else:
                    async for bar in self._streamed(update):
                        yield bar
        finally:
            await self._unwatch()

    async def close(self) -> None:
        """Stop watching and close the exchange's websocket and HTTP sessions; bounded, so a
        venue that never answers the close cannot keep a finished run from exiting."""
        await self._unwatch()
        try:
            await asyncio.wait_for(self.exchange.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("closing the exchange's connections timed out after %g s", CLOSE_TIMEOUT)

    # -- websocket ------------------------------------------------------------------------

    def _watch(self) -> None:
        self._watcher = asyncio.create_task(self._pump(), name=f"watch_ohlcv:{self.symbol}")

    async def _pump(self) -> None:
        """Re-arm ``watch_ohlcv`` at once after each update (ccxt wakes only pending watchers)."""
        try:
            while True:
                rows = await self.exchange.watch_ohlcv(self.symbol, self.timeframe)
                self._updates.put_nowait([list(r) for r in rows])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to bars(), which decides by type
            self._updates.put_nowait(exc)

    async def _unwatch(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
            await asyncio.wait({watcher}, timeout=5.0)

    async def _next_update(self) -> Update | None:
        """The next websocket update or error; None when a REST poll is due."""
        timeout = self.config.polling.interval if self.on_rest else self.config.idle_poll
        if timeout is None:
            return await self._updates.get()
        try:
            return await asyncio.wait_for(self._updates.get(), timeout)
        except TimeoutError:
            return None

    async def _failed(self, exc: BaseException) -> None:
        """Back off and reconnect, or (after too many failures) fall back to REST polling."""
        self._watcher = None
        if not isinstance(exc, ccxt.NetworkError | ConnectionError):  # aiohttp's reset too
            raise exc
        _reraise_cancel()
        self.failures += 1
        self._gap = True
        extra = {"symbol": self.symbol, "failures": self.failures, "error": str(exc)}
        if not self.on_rest:
            delay = _jittered(self.failures - 1, self.config.backoff, self.config.max_backoff)
            log.warning("websocket failed; reconnecting", extra={**extra, "delay": delay})
            await asyncio.sleep(delay)
            self.reconnects += 1
            self._watch()
            return
        if self.failures == self.config.max_ws_failures:
            self.fallbacks += 1
            log.warning(
                "websocket failed %d times in a row; falling back to REST polling",
                self.failures,
                extra={**extra, "retry": self.config.ws_retry},
            )
        self._probe_at = self._loop_time() + self.config.ws_retry

    async def _streamed(self, rows: list[list[Any]]) -> AsyncIterator[Bar]:
        """Emit the bars a websocket update closed, REST back-filling first after a gap."""
        if self.failures:
            log.info("websocket streaming again", extra={"symbol": self.symbol})
            self.failures = 0
        for row in rows:
            stamp = int(row[0])
            self.stream_ms = max(self.stream_ms, stamp)
            if self.last_ms is None or stamp > self.last_ms:
                self.pending[stamp] = row
        closed = sorted(t for t in self.pending if t < self.stream_ms)
        if self._gap or (closed and closed[0] != (self.last_ms or 0) + self.step_ms):
            async for bar in self._catch_up():  # missed bars first, from REST
                yield bar
            self._gap = False
        for stamp in closed:
            if self.last_ms is None or stamp > self.last_ms:
                self.rest.last_ms = stamp
                self.stream_bars += 1
                yield _bar(self.symbol, self.pending[stamp])
        self.pending = {t: r for t, r in self.pending.items() if t > (self.last_ms or 0)}

    # -- REST -----------------------------------------------------------------------------

    async def _catch_up(self) -> AsyncIterator[Bar]:
        """REST pages of closed bars after the last emitted until caught up; network errors are
        retried (with backoff), since nothing newer may be emitted before the gap is filled."""
        while True:
            page = await self.rest._page()
            if page is None:
                _reraise_cancel()
                continue
            for bar in page:
                self.rest_bars += 1
                yield bar
            if len(page) < self.rest.config.limit - 1:
                return

    def _clock(self) -> int:
        """The exchange's time as far as its stream has shown it: the newest bar's open."""
        return self.stream_ms

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()


def _reraise_cancel() -> None:
    """Raise a pending cancellation of this task that a library turned into a network error, so
    a retry loop cannot outlive the runner cancelling it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _jittered(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff ``base · 2^attempt`` capped at ``cap``, times a jitter in [0.5, 1.5)."""
    return min(cap, base * 2.0 ** min(attempt, 16)) * (0.5 + random.random())


def _bar(symbol: str, row: list[Any]) -> Bar:
    return Bar(symbol, pd.Timestamp(int(row[0]), unit="ms", tz="UTC"), *_ohlcv(row))


def _ohlcv(row: list[Any]) -> tuple[float, float, float, float, float]:
    o, h, lo, c, v = (float(x) if x is not None else 0.0 for x in row[1:6])
    return o, h, lo, c, v
