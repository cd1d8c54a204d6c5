"""The bot's stoppable feed ends cleanly however its consumer ends: when the stop is set,
and when the task reading it is cancelled while a bar is awaited (the runner's shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pandas as pd

from aitrader.engine.types import Bar
from aitrader.ops.bot import StoppableFeed


class SlowFeed:
    """One bar at once, then a bar every ``gap`` seconds; records that it was closed."""

    symbol = "BTC/USDT"
    timeframe = "1h"

    def __init__(self, gap: float) -> None:
        self.gap, self.closed = gap, False

    async def bars(self) -> AsyncIterator[Bar]:
        try:
            i = 0
            while i < 100:
                yield bar(i)
                i += 1
                await asyncio.sleep(self.gap)
        finally:
            self.closed = True


def bar(i: int) -> Bar:
    time = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=i)
    return Bar("BTC/USDT", time, 100.0, 101.0, 99.0, 100.5, 1.0)


async def read(feed: StoppableFeed, into: list[Bar]) -> None:
    async for item in feed.bars():
        into.append(item)


def test_cancelling_the_reader_mid_wait_closes_the_feed_without_an_error() -> None:
    async def main() -> tuple[BaseException | None, bool, int]:
        inner, got = SlowFeed(gap=10.0), list[Bar]()
        task = asyncio.create_task(read(StoppableFeed(inner, asyncio.Event()), got))
        for _ in range(20):  # let it take the first bar and wait for the second
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert done, "the reader did not end when cancelled"
        error = None if task.cancelled() else task.exception()
        return error, inner.closed, len(got)

    error, closed, count = asyncio.run(main())
    assert error is None  # cancelled, not "aclose(): asynchronous generator is already running"
    assert closed and count == 1


def test_setting_the_stop_ends_the_feed_after_the_bars_in_hand() -> None:
    async def main() -> tuple[int, bool]:
        inner, stop, got = SlowFeed(gap=10.0), asyncio.Event(), list[Bar]()
        task = asyncio.create_task(read(StoppableFeed(inner, stop), got))
        for _ in range(20):
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, timeout=2.0)
        return len(got), inner.closed

    count, closed = asyncio.run(main())
    assert count == 1 and closed
