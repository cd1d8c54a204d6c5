"""Websocket klines: the emulator's Binance market-stream protocol, and :class:`WebsocketFeed` on
a real ccxt.pro client against it (closed bars only, reconnect with REST back-fill after a drop,
REST polling fallback after refused reconnects)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pandas as pd
import pytest

from aitrader.emulator import ExchangeEmulator
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.venues.ccxt.feeds import PollingConfig, WebsocketConfig, WebsocketFeed

STEP = pd.Timedelta(hours=1)
STREAM = "btcusdt@kline_1h"
FAST = WebsocketConfig(
    max_ws_failures=3,
    backoff=0.02,
    max_backoff=0.1,
    ws_retry=0.3,
    polling=PollingConfig(interval=0.02, limit=50, max_backoff=0.05),
)

pytestmark = pytest.mark.timeout(30)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling) for ``predicate``; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


class Collector:
    """Consumes a feed in a task (as the runner does), so the feed runs while the test acts."""

    def __init__(self, feed: WebsocketFeed) -> None:
        self.feed = feed
        self.bars: list[Bar] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for bar in self.feed.bars():
            self.bars.append(bar)

    async def wait(self, n: int, timeout: float = 5.0) -> list[Bar]:
        await until(lambda: len(self.bars) >= n or self.task.done(), timeout)
        if self.task.done():
            self.task.result()  # surfaces the feed's error
        assert len(self.bars) == n, f"expected {n} bars, got {len(self.bars)}"
        return self.bars

    async def stop(self) -> None:
        """Cancel the consumer (as the runner does) and close the exchange."""
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=5)
        await self.feed.close()

    def assert_unwound(self) -> None:
        """The cancelled consumer ended and the feed stopped watching."""
        assert self.task.cancelled() and self.feed._watcher is None


async def advance(emu: ExchangeEmulator, bars: int = 1) -> None:
    await asyncio.to_thread(emu.advance, bars)


async def subscribed(emu: ExchangeEmulator, handshakes: int = 1) -> None:
    await until(lambda: emu.streams.handshakes >= handshakes and STREAM in emu.streams.streams())


def klines_requested(emu: ExchangeEmulator) -> int:
    return emu.requests.count(("GET", "/api/v3/klines"))


def assert_candles(
    emu: ExchangeEmulator, bars: list[Bar], symbol: str, first: pd.Timestamp
) -> None:
    """Consecutive closed bars from ``first``, equal to the replayed candles."""
    times = [b.time for b in bars]
    assert times == [first + k * STEP for k in range(len(bars))]
    assert all(t + STEP <= emu.now for t in times)
    candles = emu.venue.market(symbol).candles.loc[times]
    got = [v for b in bars for v in (b.open, b.high, b.low, b.close, b.volume)]
    want = candles[["open", "high", "low", "close", "volume"]].to_numpy().ravel().tolist()
    assert got == pytest.approx(want)


# -- the emulator's stream protocol -----------------------------------------------------------


def test_stream_protocol_subscribe_klines_ping_and_faults() -> None:
    with ExchangeEmulator() as emu:

        async def scenario() -> None:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{emu.ws_url}/0", autoping=False) as ws:
                    await _commands(ws)
                    await ws.ping(b"hi")
                    pong = await ws.receive(timeout=5)
                    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hi")
                    await _klines(emu, ws)
                    assert await asyncio.to_thread(emu.drop_websockets) == 1
                    dropped = await ws.receive(timeout=5)
                    assert dropped.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                async with session.ws_connect(f"{emu.ws_url}/{STREAM}") as raw:
                    await raw.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 7})
                    assert await raw.receive_json(timeout=5) == {"result": [STREAM], "id": 7}
                emu.refuse_websockets(1)
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(emu.ws_url)
                assert refused.value.status == 503 and emu.streams.refused == 1
                async with session.ws_connect(emu.ws_url):  # the next one is accepted
                    assert emu.streams.handshakes == 3

        asyncio.run(asyncio.wait_for(scenario(), 10))
        pro = emu.pro_client()
        assert pro.urls["api"]["ws"]["spot"] == emu.ws_url == f"{emu.url.replace('http', 'ws')}/ws"
        assert emu.client().urls["api"]["public"] == f"{emu.url}/api/v3"


async def _commands(ws: aiohttp.ClientWebSocketResponse) -> None:
    replies = [
        ({"method": "SUBSCRIBE", "params": [STREAM], "id": 1}, {"result": None, "id": 1}),
        ({"method": "LIST_SUBSCRIPTIONS", "id": 2}, {"result": [STREAM], "id": 2}),
        (
            {"method": "SUBSCRIBE", "params": ["ethusdt@kline_1h"], "id": 3},
            {"result": None, "id": 3},
        ),
        (
            {"method": "UNSUBSCRIBE", "params": ["ethusdt@kline_1h"], "id": 4},
            {"result": None, "id": 4},
        ),
        ({"method": "LIST_SUBSCRIPTIONS", "id": 5}, {"result": [STREAM], "id": 5}),
    ]
    for request, reply in replies:
        await ws.send_json(request)
        assert await ws.receive_json(timeout=5) == reply
    await ws.send_str("{not json")
    assert (await ws.receive_json(timeout=5))["code"] == 3
    await ws.send_json({"method": "SUBSCRIBE", "params": [STREAM], "id": -1})
    assert (await ws.receive_json(timeout=5))["code"] == 2
    await ws.send_json({"method": "NOPE", "params": [], "id": 6})
    assert (await ws.receive_json(timeout=5)) == {
        "code": 2,
        "msg": "Invalid request: unknown variable",
        "id": 6,
    }
    await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 8})
    error = await ws.receive_json(timeout=5)
    assert error["code"] == 2 and error["id"] == 8


async def _klines(emu: ExchangeEmulator, ws: aiohttp.ClientWebSocketResponse) -> None:
    closed_at = emu.now
    await advance(emu)
    final, fresh = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
    candles = emu.venue.market("BTCUSDT").candles
    bar, new = candles.loc[closed_at], candles.loc[emu.now]
    ms = closed_at.value // 1_000_000
    assert final["e"] == "kline" and final["s"] == "BTCUSDT" and final["E"] == emu.venue.now_ms
    k = final["k"]
    assert set(k) >= set("tTsiochlvnxqVQB")
    assert (k["t"], k["T"], k["s"], k["i"], k["x"]) == (ms, ms + 3_599_999, "BTCUSDT", "1h", True)
    values = [float(k[f]) for f in "ohlcv"]
    assert values == pytest.approx([bar[c] for c in ("open", "high", "low", "close", "volume")])
    k = fresh["k"]
    assert k["t"] == ms + 3_600_000 and k["x"] is False  # in progress: only the open is known
    assert [float(k[f]) for f in "ohlc"] == pytest.approx([new["open"]] * 4)
    assert float(k["v"]) == 0.0


# -- WebsocketFeed on ccxt.pro ----------------------------------------------------------------


def test_ws_feed_yields_closed_bars_equal_to_the_candles() -> None:
    with ExchangeEmulator() as emu:
        since = emu.now - 3 * STEP  # two closed bars after it come from REST
        latest_closed = emu.now - STEP

        async def scenario() -> tuple[Collector, Collector]:
            pro = emu.pro_client()  # one client, two symbols on one connection
            btc = Collector(WebsocketFeed(pro, "BTC/USDT", "1h", since, FAST))
            eth = Collector(WebsocketFeed(pro, "ETH/USDT", "1h", None, FAST))
            try:
                await btc.wait(2)
                await eth.wait(1)  # no start: the latest closed bar
                await until(lambda: emu.streams.streams() >= {STREAM, "ethusdt@kline_1h"})
                for k in range(1, 6):
                    await advance(emu)
                    await btc.wait(2 + k)
                    await eth.wait(1 + k)
                assert not btc.task.done() and not eth.task.done()
            finally:
                await btc.stop()
                await eth.stop()
            return btc, eth

        btc, eth = asyncio.run(asyncio.wait_for(scenario(), 20))
        assert_candles(emu, btc.bars, "BTCUSDT", since + STEP)
        assert_candles(emu, eth.bars, "ETHUSDT", latest_closed)
        assert (btc.feed.rest_bars, btc.feed.stream_bars) == (2, 5)
        assert (eth.feed.rest_bars, eth.feed.stream_bars) == (1, 5)
        assert emu.streams.handshakes == 1 and btc.feed.reconnects == 0
        btc.assert_unwound()
        eth.assert_unwound()


def test_ws_feed_reconnects_after_a_drop_and_backfills_from_rest() -> None:
    with ExchangeEmulator() as emu:
        since = emu.now - 2 * STEP

        async def scenario() -> Collector:
            feed = Collector(WebsocketFeed(emu.pro_client(), "BTC/USDT", "1h", since, FAST))
            try:
                await feed.wait(1)
                await subscribed(emu)
                await advance(emu)
                await feed.wait(2)
                rest_calls = klines_requested(emu)
                assert await asyncio.to_thread(emu.drop_websockets) == 1
                await advance(emu, 3)  # three bars close while the connection is down
                await subscribed(emu, handshakes=2)
                await advance(emu)
                await feed.wait(6)  # the three missed + the one just closed, in order, once each
                assert klines_requested(emu) > rest_calls  # the missed bars came from REST
                assert feed.feed.reconnects >= 1 and not feed.feed.on_rest
                streamed = feed.feed.stream_bars
                await advance(emu)
                await feed.wait(7)
                assert feed.feed.stream_bars == streamed + 1  # streaming again
            finally:
                await feed.stop()
            return feed

        feed = asyncio.run(asyncio.wait_for(scenario(), 20))
        assert_candles(emu, feed.bars, "BTCUSDT", since + STEP)
        feed.assert_unwound()


def test_ws_feed_falls_back_to_rest_polling_and_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = WebsocketConfig(
        max_ws_failures=2, backoff=0.02, max_backoff=0.1, ws_retry=0.3, polling=FAST.polling
    )
    with ExchangeEmulator() as emu, caplog.at_level(logging.WARNING, "aitrader.feeds.ccxt"):
        since = emu.now - 2 * STEP

        async def scenario() -> Collector:
            feed = Collector(WebsocketFeed(emu.pro_client(), "BTC/USDT", "1h", since, config))
            try:
                await feed.wait(1)
                await subscribed(emu)
                emu.refuse_websockets(3)  # two failed reconnects, then one failed retry from REST
                await asyncio.to_thread(emu.drop_websockets)
                await until(lambda: feed.feed.on_rest)
                rest_bars = feed.feed.rest_bars
                await advance(emu, 3)
                await feed.wait(4)  # delivered by REST polling while the websocket is refused
                assert feed.feed.rest_bars == rest_bars + 3 and feed.feed.on_rest
                await subscribed(emu, handshakes=2)  # a periodic retry got through
                await advance(emu)
                await until(lambda: not feed.feed.on_rest)  # klines flow again: streaming
                await feed.wait(5)
                assert emu.streams.refused == 3
                streamed = feed.feed.stream_bars
                await advance(emu)
                await feed.wait(6)
                assert feed.feed.stream_bars == streamed + 1
            finally:
                await feed.stop()
            return feed

        feed = asyncio.run(asyncio.wait_for(scenario(), 25))
        assert_candles(emu, feed.bars, "BTCUSDT", since + STEP)
        feed.assert_unwound()
        assert feed.feed.fallbacks == 1
        assert any("falling back to REST polling" in r.getMessage() for r in caplog.records)


def test_ws_feed_checks_rest_when_the_stream_goes_silent() -> None:
    config = WebsocketConfig(idle_poll=0.2, polling=FAST.polling)
    with ExchangeEmulator() as emu:
        since = emu.now - 2 * STEP

        async def scenario() -> Collector:
            feed = Collector(WebsocketFeed(emu.pro_client(), "BTC/USDT", "1h", since, config))
            try:
                await feed.wait(1)
                await subscribed(emu)
                await asyncio.to_thread(emu.venue.advance, 2)  # the clock moves, no pushes
                await feed.wait(3, timeout=3)
                assert feed.feed.stream_bars == 0 and feed.feed.failures == 0
            finally:
                await feed.stop()
            return feed

        feed = asyncio.run(asyncio.wait_for(scenario(), 10))
        assert_candles(emu, feed.bars, "BTCUSDT", since + STEP)


def test_ws_feed_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        WebsocketFeed(_StubExchange(), "BTC/USDT", "1h", config=WebsocketConfig(max_ws_failures=0))


class _StubExchange:
    def parse_timeframe(self, timeframe: str) -> int:
        return 3600

    def milliseconds(self) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)
