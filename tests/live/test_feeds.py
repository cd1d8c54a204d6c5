"""Closed-bar feeds: replay pacing, and ccxt REST polling against the local exchange emulator
(only closed bars, back-fill after a gap, retry after a server error)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.emulator import ExchangeEmulator
from aitrader.emulator.server import unavailable
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.live.feeds import ReplayFeed
from aitrader.venues.ccxt.feeds import PollingConfig, PollingFeed

FAST = PollingConfig(interval=0.01, limit=50, max_backoff=0.05)


async def _take(bars: AsyncIterator[Bar], n: int) -> list[Bar]:
    out = []
    async for bar in bars:
        out.append(bar)
        if len(out) == n:
            break
    return out


def test_replay_feed_yields_every_bar_and_paces_by_speed() -> None:
    candles = load_sample("BTC-USD-1h").iloc[:5]
    bars = asyncio.run(_take(ReplayFeed("BTC/USD", candles).bars(), 5))
    assert [b.time for b in bars] == list(candles.index)
    assert [b.close for b in bars] == candles["close"].tolist()
    start = time.monotonic()
    asyncio.run(_take(ReplayFeed("BTC/USD", candles, speed=3600 / 0.05).bars(), 3))
    assert time.monotonic() - start >= 0.09  # two pauses of 0.05 s between three bars
    with pytest.raises(ConfigError):
        ReplayFeed("BTC/USD", candles, speed=-1)


def test_polling_feed_backfills_closed_bars_only_and_survives_a_5xx() -> None:
    with ExchangeEmulator() as emu:
        client = emu.client()
        step = pd.Timedelta(hours=1)
        since = emu.now - 4 * step  # three closed bars after `since` were missed

        async def scenario() -> list[Bar]:
            feed = PollingFeed(client, "BTC/USDT", "1h", since, FAST, lambda: emu.venue.now_ms)
            bars = feed.bars()
            first = await asyncio.wait_for(_take(bars, 3), 10)
            emu.inject(unavailable(503), times=2)
            emu.advance(2)
            rest = await asyncio.wait_for(_take(bars, 2), 10)
            return first + rest

        bars = asyncio.run(scenario())
        times = [b.time for b in bars]
        assert times == [since + k * step for k in range(1, 6)]
        assert all(t + step <= emu.now for t in times)  # never the bar in progress
        candles = emu.venue.market("BTCUSDT").candles
        assert [b.close for b in bars] == candles.loc[times, "close"].tolist()
