"""Binance spot's user-data stream for the emulator: order and balance events pushed to the account.

Two ways in, as Binance has them:

* the WebSocket API at ``/ws-api/v3`` (what ``ccxt.pro.binance`` uses for spot
  ``watch_orders`` / ``watch_my_trades`` / ``watch_balance``): requests ``{"id", "method",
  "params"}`` answered ``{"id", "status": 200, "result"}`` or ``{"id", "status", "error": {"code",
  "msg"}}``; ``userDataStream.subscribe.signature`` (``apiKey``, ``timestamp``, ``signature`` over
  the other parameters sorted by name) returns a ``subscriptionId`` and from then on every event
  comes as ``{"subscriptionId", "event"}``; ``userDataStream.unsubscribe``, ``ping`` and ``time``
  are served too;
* a listenKey: ``POST /api/v3/userDataStream`` (``X-MBX-APIKEY`` header, no signature) returns
  one (the same one while it lives), ``PUT`` keeps it alive for another 60 minutes, ``DELETE``
  closes it; ``/ws/<listenKey>`` then streams the bare events. An unknown, closed or expired
  listenKey is answered ``-1125 This listenKey does not exist.`` (a websocket handshake on one
  gets HTTP 400 with that body).

Events: ``executionReport`` for every order state change (NEW, TRADE per execution, CANCELED,
EXPIRED), each followed by ``outboundAccountPosition`` with the order's base and quote balances.
Orders the venue refuses never exist, so there is no REJECTED report (REST answers the error).

Threading: the venue reports changes under its lock from whichever thread changed it (REST
handlers on the server loop, ``advance()`` on the caller's); the events are built there, then
handed to the server loop, where each socket's writer task sends them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from aitrader.emulator import wire
from aitrader.emulator.auth import check_key, verify_ws
from aitrader.emulator.streams import REFUSED_HTML, StreamHub
from aitrader.emulator.venue import OrderUpdate, Venue, VenueError

log = logging.getLogger(__name__)

WS_API_PATH = "/ws-api/v3"
LISTEN_KEY_PATH = "/api/v3/userDataStream"
LISTEN_KEY_TTL = 3600.0  # seconds a listenKey lives without a keep-alive
LISTEN_KEY = re.compile(r"[A-Za-z0-9]{60}")
NO_LISTEN_KEY = VenueError(-1125, "This listenKey does not exist.")


@dataclass
class UserSocket:
    """One user-data websocket: a WebSocket API session or a ``/ws/<listenKey>`` stream."""

    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str | None]  # frames to send, in order (None: stop)
    listen_key: str | None = None  # a listenKey stream: events go out unwrapped
    subscriptions: set[int] = field(default_factory=set)  # WebSocket API subscription ids
    next_subscription: int = 0

    @property
    def listening(self) -> bool:
        return self.listen_key is not None or bool(self.subscriptions)


@dataclass
class ListenKey:
    api_key: str
    expires: float  # on the hub's clock


class UserDataHub:
    """User-data sockets, listenKeys and the order/balance events pushed to them."""

    def __init__(
        self,
        venue: Venue,
        keys: Mapping[str, str],
        streams: StreamHub,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.keys = keys
        self.streams = streams  # shares its refusal fault: one websocket front end
        self.clock = clock
        self.sockets: list[UserSocket] = []  # server loop only
        self.listen_keys: dict[str, ListenKey] = {}
        self.handshakes = 0  # user-data websocket connections accepted so far
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the server when it runs
        self._lock = threading.Lock()
        venue.listeners.append(self._on_update)

    # -- venue side (any thread, under the venue lock) ------------------------------------

    def _on_update(self, update: OrderUpdate) -> None:
        loop = self.loop
        if loop is None or not any(s.listening for s in list(self.sockets)):
            return
        market = self.venue.markets[update.order.symbol]
        report = wire.execution_report(update, self.venue)
        position = wire.account_position(self.venue, [market.base, market.quote], report["E"])
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(self._deliver, [report, position])

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        for sock in self.sockets:
            if sock.ws.closed:
                continue
            if sock.listen_key is not None:
                frames = [json.dumps(e) for e in events]
            else:
                frames = [
                    json.dumps({"subscriptionId": sid, "event": e})
                    for sid in sorted(sock.subscriptions)
                    for e in events
                ]
            for frame in frames:
                sock.queue.put_nowait(frame)

    # -- listenKeys (REST) ----------------------------------------------------------------

    def listen_key_request(
        self, method: str, api_key: str | None, params: Mapping[str, str]
    ) -> Any:
        """``POST``/``PUT``/``DELETE /api/v3/userDataStream``; raises VenueError like Binance."""
        key = check_key(api_key, self.keys)
        now = self.clock()
        with self._lock:
            if method == "POST":
                live = [k for k, v in self.listen_keys.items() if v.api_key == key]
                created = next((k for k in live if self.listen_keys[k].expires > now), None)
                created = created or _new_listen_key()
                self.listen_keys[created] = ListenKey(key, now + LISTEN_KEY_TTL)
                return {"listenKey": created}
            listen_key = params.get("listenKey", "")
            if not listen_key:
                raise VenueError(
                    -1102,
                    "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
                )
            entry = self.listen_keys.get(listen_key)
            if entry is None or entry.api_key != key or entry.expires <= now:
                raise NO_LISTEN_KEY
            if method == "PUT":
                entry.expires = now + LISTEN_KEY_TTL
            else:
                del self.listen_keys[listen_key]
        if method == "DELETE":
            self._close_streams_of(listen_key, expired=False)
        return {}

    def live(self, listen_key: str) -> bool:
        with self._lock:
            entry = self.listen_keys.get(listen_key)
            return entry is not None and entry.expires > self.clock()

    def expire_listen_keys(self) -> list[str]:
        """Expire every listenKey now (any thread but the server loop's): their streams get
        ``listenKeyExpired`` and are closed; which keys expired."""
        with self._lock:
            expired = list(self.listen_keys)
            self.listen_keys.clear()
        for listen_key in expired:
            self._close_streams_of(listen_key, expired=True)
        return expired

    def _close_streams_of(self, listen_key: str, expired: bool) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        def close() -> None:
            for sock in self.sockets:
                if sock.listen_key != listen_key:
                    continue
                if expired:
                    event = {"e": "listenKeyExpired", "E": self.venue.now_ms}
                    sock.queue.put_nowait(json.dumps({**event, "listenKey": listen_key}))
                sock.queue.put_nowait(None)  # the writer closes it after what is queued

        loop.call_soon_threadsafe(close)

    # -- websockets (server loop) ---------------------------------------------------------

    async def handle_listen_key(self, request: web.Request, listen_key: str) -> web.StreamResponse:
        """A ``/ws/<listenKey>`` handshake: the bare event stream of that listenKey."""
        if self.streams.take_refusal():
            return web.Response(status=503, text=REFUSED_HTML, content_type="text/html")
        if not self.live(listen_key):
            body = json.dumps({"code": NO_LISTEN_KEY.code, "msg": NO_LISTEN_KEY.msg})
            return web.Response(status=400, text=body, content_type="application/json")
        return await self._serve(request, listen_key)

    async def handle_ws_api(self, request: web.Request) -> web.StreamResponse:
        """A WebSocket API session on ``/ws-api/v3``."""
        if self.streams.take_refusal():
            return web.Response(status=503, text=REFUSED_HTML, content_type="text/html")
        return await self._serve(request, None)

    async def _serve(self, request: web.Request, listen_key: str | None) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=1.0, autoping=True, max_msg_size=65536)
        sock = UserSocket(ws, request, asyncio.Queue(), listen_key)
        self.handshakes += 1
        await ws.prepare(request)
        self.sockets.append(sock)
        writer = asyncio.create_task(self._write(sock))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT and listen_key is None:
                    sock.queue.put_nowait(json.dumps(self._command(sock, message.data)))
        finally:
            if sock in self.sockets:
                self.sockets.remove(sock)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    async def _write(self, sock: UserSocket) -> None:
        while True:
            frame = await sock.queue.get()
            if frame is None or sock.ws.closed:
                await sock.ws.close()
                return
            try:
                await sock.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # the peer went away; the handler cleans up

    async def drop_all(self) -> int:
        """Cut every user-data connection without a close frame."""
        dropped = list(self.sockets)
        for sock in dropped:
            transport = sock.request.transport
            if transport is not None:
                transport.abort()
        self.sockets.clear()
        return len(dropped)

    async def close_all(self) -> None:
        closing = [s.ws.close(code=1001, message=b"server shutdown") for s in self.sockets]
        await asyncio.gather(*closing, return_exceptions=True)

    # -- WebSocket API requests -----------------------------------------------------------

    def _command(self, sock: UserSocket, text: str) -> dict[str, Any]:
        try:
            request = json.loads(text)
        except ValueError:
            return _failure(None, VenueError(-1100, "Illegal characters found in a parameter."))
        if not isinstance(request, dict):
            return _failure(None, VenueError(-1100, "Illegal characters found in a parameter."))
        request_id = request.get("id")
        try:
            result = self._call(sock, request.get("method"), request.get("params", {}))
        except VenueError as exc:
            return _failure(request_id, exc)
        return {"id": request_id, "status": 200, "result": result}

    def _call(self, sock: UserSocket, method: Any, params: Any) -> Any:
        if not isinstance(params, dict):
            raise VenueError(-1100, "Illegal characters found in parameter 'params'.")
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.venue.now_ms}
        if method == "userDataStream.subscribe.signature":
            verify_ws(params, self.keys)
            sid = sock.next_subscription
            sock.next_subscription += 1
            sock.subscriptions.add(sid)
            return {"subscriptionId": sid}
        if method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId")
            if wanted is None:
                sock.subscriptions.clear()
            elif wanted in sock.subscriptions:
                sock.subscriptions.discard(wanted)
            else:
                raise VenueError(-1100, "Illegal characters found in parameter 'subscriptionId'.")
            return {}
        raise VenueError(-1020, "This operation is not supported.")


def _failure(request_id: Any, exc: VenueError) -> dict[str, Any]:
    return {"id": request_id, "status": exc.status, "error": {"code": exc.code, "msg": exc.msg}}


def _new_listen_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(60))
