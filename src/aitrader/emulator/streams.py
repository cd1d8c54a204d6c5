"""Binance spot's market streams over websockets for the emulator.

Served at ``/ws`` and ``/ws/<anything>`` (ccxt appends a stream index, ``/ws/0``; a valid stream
name there is subscribed on connect, as Binance's raw streams are). Commands are Binance's
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` with their ``{"result", "id"}`` replies and
``{"code", "msg"}`` errors. When the replay clock moves, every ``<symbol>@kline_<interval>``
subscriber gets the bar just closed (``"x": true``) and the new bar in progress (``"x": false``,
only its open known). Ping frames are answered with pongs. Faults: drop every connection abruptly,
or refuse the next handshakes with HTTP 503.

Threading: connections live on the server's event loop; ``refuse`` and ``kline_messages`` may be
called from any thread, the coroutines run on the server loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from aiohttp import WSMsgType, web

from aitrader.emulator import wire
from aitrader.emulator.venue import Venue

log = logging.getLogger(__name__)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")
MAX_STREAMS = 1024  # Binance's limit per connection
REFUSED_HTML = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


@dataclass
class Connection:
    """One open websocket and the streams it is subscribed to."""

    ws: web.WebSocketResponse
    request: web.Request
    streams: set[str] = field(default_factory=set)


class StreamError(Exception):
    """A command Binance would answer with ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class StreamHub:
    """The websocket side of the emulator: connections, subscriptions, kline pushes, faults."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.connections: list[Connection] = []  # server loop only
        self.handshakes = 0  # accepted websocket connections so far
        self.refused = 0  # handshakes answered 503 so far
        self._refusals = 0
        self._lock = threading.Lock()

    # -- controls (any thread) ------------------------------------------------------------

    def refuse(self, attempts: int) -> None:
        """Answer the next ``attempts`` handshakes with HTTP 503 (0 accepts again)."""
        with self._lock:
            self._refusals = max(0, attempts)

    def streams(self) -> set[str]:
        """Every stream some connection is subscribed to."""
        return {s for c in list(self.connections) for s in c.streams}

    def kline_messages(self, closed: pd.Timestamp, opened: pd.Timestamp) -> list[tuple[str, str]]:
        """``(stream, json)`` kline events for every market: bar ``closed`` final, ``opened`` new.

        Call right after the clock moved (under the venue lock) so both bars are read as of then.
        """
        out = []
        event_ms = self.venue.now_ms
        for symbol in self.venue.markets:
            stream = f"{symbol.lower()}@kline_{self.venue.timeframe}"
            for ts, final in ((closed, True), (opened, False)):
                row = wire.kline(self.venue, symbol, ts)
                if row is not None:
                    event = kline_event(symbol, self.venue.timeframe, row, final, event_ms)
                    out.append((stream, json.dumps(event)))
        return out

    # -- server loop ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """A websocket handshake on ``/ws[/<stream>]``, then its command loop."""
        if self.take_refusal():
            return web.Response(status=503, text=REFUSED_HTML, content_type="text/html")
        ws = web.WebSocketResponse(timeout=1.0, autoping=True, max_msg_size=65536)
        connection = Connection(ws, request)
        tail = request.match_info.get("streams", "")
        connection.streams.update(s for s in tail.split("/") if self._valid(s))
        self.handshakes += 1  # counted before the 101 goes out, so a client never sees it late
        await ws.prepare(request)
        self.connections.append(connection)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await ws.send_str(json.dumps(self._command(connection, message.data)))
        finally:
            if connection in self.connections:
                self.connections.remove(connection)
        return ws

    async def broadcast(self, messages: list[tuple[str, str]]) -> int:
        """Send each ``(stream, json)`` to that stream's subscribers; how many frames went out."""
        sent = 0
        for connection in list(self.connections):
            for stream, text in messages:
                if stream in connection.streams and not connection.ws.closed:
                    try:
                        await connection.ws.send_str(text)
                        sent += 1
                    except (ConnectionError, RuntimeError):
                        break  # the peer went away; its handler cleans up
        return sent

    async def drop_all(self) -> int:
        """Cut every connection without a close frame (what a network drop looks like)."""
        dropped = list(self.connections)
        for connection in dropped:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        self.connections.clear()
        return len(dropped)

    async def close_all(self) -> None:
        """Close every connection politely (server shutdown: 1001 going away)."""
        closing = [c.ws.close(code=1001, message=b"server shutdown") for c in self.connections]
        await asyncio.gather(*closing, return_exceptions=True)

    # -- protocol -------------------------------------------------------------------------

    def take_refusal(self) -> bool:
        with self._lock:
            if self._refusals > 0:
                self._refusals -= 1
                self.refused += 1
                return True
        return False

    def _valid(self, stream: str) -> bool:
        symbol, sep, kind = stream.partition("@")
        return (
            bool(sep)
            and symbol.upper() in self.venue.markets
            and (kind == f"kline_{self.venue.timeframe}")
        )

    def _command(self, connection: Connection, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except ValueError as exc:
            return {"code": 3, "msg": f"Invalid JSON: {exc}"}
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            result = self._execute(connection, request)
        except StreamError as exc:
            return {"code": exc.code, "msg": exc.msg, "id": request_id}
        return {"result": result, "id": request_id}

    def _execute(self, connection: Connection, request: Any) -> Any:
        if not isinstance(request, dict):
            raise StreamError(2, "Invalid request: must be an object")
        if not isinstance(request.get("id"), int) or request["id"] < 0:
            raise StreamError(2, "Invalid request: request ID must be an unsigned integer")
        method = request.get("method")
        if method not in METHODS:
            raise StreamError(2, "Invalid request: unknown variable")
        if method == "LIST_SUBSCRIPTIONS":
            return sorted(connection.streams)
        params = request.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise StreamError(2, "Invalid request: params must be an array of stream names")
        if method == "UNSUBSCRIBE":
            connection.streams.difference_update(params)
            return None
        invalid = [p for p in params if not self._valid(p)]
        if invalid:
            raise StreamError(2, f"Invalid request: unknown stream {invalid[0]!r}")
        if len(connection.streams | set(params)) > MAX_STREAMS:
            raise StreamError(2, "Invalid request: too many parameters")
        connection.streams.update(params)
        return None


def kline_event(
    symbol: str, interval: str, row: list[Any], final: bool, event_ms: int
) -> dict[str, Any]:
    """Binance's ``kline`` stream event from a REST kline row (``wire.kline``)."""
    t, o, h, low, c, v, close_ms, q, n, taker_v, taker_q, _ = row
    k = {"t": t, "T": close_ms, "s": symbol, "i": interval, "f": -1, "L": -1, "o": o, "c": c,
         "h": h, "l": low, "v": v, "n": n, "x": final, "q": q, "V": taker_v, "Q": taker_q,
         "B": "0"}  # fmt: skip
    return {"e": "kline", "E": event_ms, "s": symbol, "k": k}


def run_on(loop: asyncio.AbstractEventLoop | None, coro: Any, timeout: float = 5.0) -> Any:
    """Run ``coro`` on the server ``loop`` from another thread and wait for it (None: no loop)."""
    if loop is None or loop.is_closed():
        coro.close()
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("emulator controls are called from outside its server loop")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
