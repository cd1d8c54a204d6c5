"""The emulator's HTTP server (aiohttp, in a background thread on 127.0.0.1) and its controls:
the replay clock, fault injection, and a real ccxt client pointed at it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd
from aiohttp import web

from aitrader.data.samples import get_sample, load_sample
from aitrader.emulator.auth import verify
from aitrader.emulator.routes import ROUTES
from aitrader.emulator.streams import StreamHub, run_on
from aitrader.emulator.userdata import LISTEN_KEY, LISTEN_KEY_PATH, WS_API_PATH, UserDataHub
from aitrader.emulator.venue import MarketSpec, Venue, VenueError
from aitrader.venues.ccxt.client import binance_rest_urls, point_binance, raw_client

log = logging.getLogger(__name__)

HTML_503 = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


@dataclass(frozen=True)
class Fault:
    """One injected answer. ``status`` 0 answers normally after ``delay`` seconds; otherwise
    the status with Binance's ``{"code", "msg"}`` body (when ``code`` is set) or an HTML page,
    and ``Retry-After`` when given. ``path``/``method`` restrict which requests it hits."""

    status: int = 0
    delay: float = 0.0
    code: int | None = None
    msg: str = ""
    retry_after: str | None = None
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and (
            self.method is None or self.method == method
        )


def rate_limited(retry_after: int = 1, path: str | None = None) -> Fault:
    msg = "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."
    return Fault(429, code=-1003, msg=msg, retry_after=str(retry_after), path=path)


def unavailable(status: int = 503, path: str | None = None) -> Fault:
    return Fault(status, path=path)


def slow(delay: float, path: str | None = None) -> Fault:
    return Fault(0, delay=delay, path=path)


def order_rejected(msg: str = "Account has insufficient balance for requested action.") -> Fault:
    return Fault(400, code=-2010, msg=msg, path="/api/v3/order", method="POST")


@dataclass(frozen=True)
class EmulatorConfig:
    """Which real candles to replay as which markets, the account, and the keys it accepts."""

    markets: Mapping[str, str] = field(
        default_factory=lambda: {"BTCUSDT": "BTC-USD-1h", "ETHUSDT": "ETH-USD-1h"}
    )
    balances: Mapping[str, float] = field(default_factory=lambda: {"USDT": 100_000.0})
    history_bars: int = 1000  # bars already closed when the replay starts
    fee_rate: float = 0.001
    participation: float = 1.0  # share of a bar's volume resting orders may take
    api_key: str = "emulator-key"
    secret: str = "emulator-secret"


def build_venue(config: EmulatorConfig) -> Venue:
    """Markets from bundled samples (``BTCUSDT`` → BTC/USDT with real BTC/USD candles)."""
    specs, timeframes = [], set()
    for symbol, sample_name in config.markets.items():
        sample = get_sample(sample_name)
        base, quote = symbol[:-4], symbol[-4:]
        specs.append(MarketSpec(symbol, base, quote, load_sample(sample_name)))
        timeframes.add(sample.timeframe)
    if len(timeframes) != 1:
        raise VenueError(-1000, f"markets must share one timeframe, got {sorted(timeframes)}")
    start = max(s.candles.index[min(config.history_bars, len(s.candles) - 1)] for s in specs)
    return Venue(
        specs,
        timeframes.pop(),
        dict(config.balances),
        start,
        config.fee_rate,
        config.participation,
    )


class ExchangeEmulator:
    """A Binance-spot-speaking exchange on 127.0.0.1 replaying real candles.

    Use as a context manager; ``url`` is the base, ``client()`` a real ``ccxt.binance`` pointed
    at it and ``pro_client()`` a real ``ccxt.pro.binance`` (REST, websocket market streams and
    the user-data stream: ``watch_orders``/``watch_my_trades``/``watch_balance``),
    ``advance()`` moves the replay clock (pushing kline events to stream subscribers, order and
    balance events to user-data subscribers),
    ``inject()``/``delay_fills()``/``drop_websockets()``/``refuse_websockets()``/
    ``expire_listen_keys()`` add faults.
    """

    def __init__(self, config: EmulatorConfig | None = None, venue: Venue | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.venue = venue or build_venue(self.config)
        self.keys = {self.config.api_key: self.config.secret}
        self.streams = StreamHub(self.venue)
        self.user = UserDataHub(self.venue, self.keys, self.streams)
        self.faults: deque[Fault] = deque()
        self.requests: list[tuple[str, str]] = []
        self.skew_ms = 0  # the exchange's wall clock minus this machine's (signed requests)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ExchangeEmulator:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, ready), name="exchange-emulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the exchange emulator did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            try:
                run_on(self._loop, self.streams.close_all())
                run_on(self._loop, self.user.close_all())
            except Exception:  # shutting down regardless
                log.debug("closing websockets on stop failed", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = self.user.loop = None

    def __enter__(self) -> ExchangeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = self.user.loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_get("/ws", self.streams.handle)
        app.router.add_get("/ws/{streams:.*}", self._stream_handshake)
        app.router.add_get(WS_API_PATH, self.user.handle_ws_api)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    # -- controls -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        """Binance spot's market-stream base (ccxt appends ``/<stream index>``)."""
        return f"ws://127.0.0.1:{self._port}/ws"

    @property
    def ws_api_url(self) -> str:
        """Binance spot's WebSocket API (ccxt's spot user-data stream)."""
        return f"ws://127.0.0.1:{self._port}{WS_API_PATH}"

    def urls(self) -> dict[str, Any]:
        """``exchange.urls['api']`` overrides for ccxt's binance spot endpoints (REST and ws)."""
        ws = {"spot": self.ws_url, "margin": self.ws_url, "ws-api": {"spot": self.ws_api_url}}
        return {**binance_rest_urls(self.url), "ws": ws}

    def client(
        self, api_key: str | None = None, secret: str | None = None, timeout_ms: int = 5000
    ) -> Any:
        """A real ``ccxt.binance`` (spot markets only) signed with the given (default) keys."""
        return self._point(raw_client("binance", self._settings(api_key, secret, timeout_ms)))

    def pro_client(
        self, api_key: str | None = None, secret: str | None = None, timeout_ms: int = 5000
    ) -> Any:
        """A real ``ccxt.pro.binance`` (asyncio; REST and websocket streams) pointed here.

        Create it inside the event loop that uses it and ``await client.close()`` when done.
        """
        return self._point(raw_client("binance", self._settings(api_key, secret, timeout_ms), True))

    def _settings(self, api_key: str | None, secret: str | None, timeout_ms: int) -> dict[str, Any]:
        return {
            "apiKey": self.config.api_key if api_key is None else api_key,
            "secret": self.config.secret if secret is None else secret,
            "timeout": timeout_ms,
            "enableRateLimit": False,
        }

    def _point(self, exchange: Any) -> Any:
        return point_binance(exchange, self.url, self.urls()["ws"])

    @property
    def now(self) -> pd.Timestamp:
        return self.venue.now

    def advance(self, bars: int = 1) -> pd.Timestamp:
        """Complete the bar in progress (resting orders may fill) and move to the next; kline
        stream subscribers get each closed bar and each new one as the clock passes it, user-data
        subscribers the fills (sent asynchronously, in order, right after)."""
        now = self.venue.now
        for _ in range(bars):
            with self.venue.lock:
                closed = self.venue.now
                now = self.venue.advance(1)
                listening = bool(self.streams.connections)
                messages = self.streams.kline_messages(closed, now) if listening else []
            if messages:
                run_on(self._loop, self.streams.broadcast(messages))
        return now

    def drop_websockets(self) -> int:
        """Cut every open websocket (market and user-data) abruptly, without a close frame;
        how many were open."""
        market = int(run_on(self._loop, self.streams.drop_all()) or 0)
        return market + int(run_on(self._loop, self.user.drop_all()) or 0)

    def expire_listen_keys(self) -> list[str]:
        """Expire every listenKey now: ``/ws/<listenKey>`` streams get ``listenKeyExpired`` and
        close, keep-alives answer -1125; which keys expired."""
        return self.user.expire_listen_keys()

    def refuse_websockets(self, attempts: int) -> None:
        """Answer the next ``attempts`` websocket handshakes (market streams, WebSocket API,
        listenKey streams) with HTTP 503 (0: accept again)."""
        self.streams.refuse(attempts)

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``fault``."""
        with self._lock:
            self.faults.extend([fault] * times)

    def skew_clock(self, ms: int) -> None:
        """Run the exchange's clock for signed requests ``ms`` ahead of this machine's (negative:
        behind), as when the bot's clock drifts: requests stamped outside ``recvWindow`` or
        1 s ahead of the exchange are refused (-1021)."""
        self.skew_ms = ms

    def outage(self, status: int = 503) -> None:
        """Answer every request with ``status`` until :meth:`restore_service`."""
        self.inject(Fault(status), times=1_000_000)

    def restore_service(self) -> None:
        """End an outage: forget every fault not hit yet."""
        with self._lock:
            self.faults.clear()

    def delay_fills(self, orders: int = 1) -> None:
        """The next ``orders`` market orders are accepted (NEW) and fill at the next bar's open."""
        with self.venue.lock:
            self.venue.delayed_market_fills += orders

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for i, fault in enumerate(self.faults):
                if fault.matches(method, path):
                    del self.faults[i]
                    return fault
        return None

    # -- HTTP -----------------------------------------------------------------------------

    async def _stream_handshake(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("streams", "")
        if LISTEN_KEY.fullmatch(tail):
            return await self.user.handle_listen_key(request, tail)
        return await self.streams.handle(request)

    async def _dispatch(self, request: web.Request) -> web.Response:
        path = request.path
        body = await request.text()  # received in full: a slow answer still executes it
        fault = self._take_fault(request.method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                return _fault_response(fault)
        if path == LISTEN_KEY_PATH and request.method in ("POST", "PUT", "DELETE"):
            try:
                params = _params(request.rel_url.raw_query_string, body)
                key = request.headers.get("X-MBX-APIKEY")
                result = self.user.listen_key_request(request.method, key, params)
            except VenueError as exc:
                return _error(exc.status, exc.code, exc.msg)
            return web.Response(text=json.dumps(result), content_type="application/json")
        route = ROUTES.get((request.method, path))
        if route is None:
            return web.Response(status=404, text="<html><body>404 Not Found</body></html>")
        try:
            params = _params(request.rel_url.raw_query_string, body)
            if route.signed:
                key = request.headers.get("X-MBX-APIKEY")
                now_ms = int(time.time() * 1000) + self.skew_ms
                verify(key, request.rel_url.raw_query_string, body, params, self.keys, now_ms)
            result = route.handle(self.venue, params)
        except VenueError as exc:
            return _error(exc.status, exc.code, exc.msg)
        return web.Response(text=json.dumps(result), content_type="application/json")


def _params(raw_query: str, body: str) -> dict[str, str]:
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps({"code": code, "msg": msg})
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _fault_response(fault: Fault) -> web.Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
    if fault.code is not None:
        return _error(fault.status, fault.code, fault.msg, headers)
    return web.Response(
        status=fault.status, text=HTML_503, content_type="text/html", headers=headers
    )
