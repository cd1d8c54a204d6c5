"""The emulator's Binance spot user-data stream: the WebSocket API subscription ccxt.pro uses for
``watch_orders`` / ``watch_my_trades`` / ``watch_balance``, the listenKey REST endpoints and
``/ws/<listenKey>`` stream, ``executionReport`` / ``outboundAccountPosition`` events from the
venue's order lifecycle, refusals and dropped connections."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt
import pytest

from aitrader.emulator import EmulatorConfig, ExchangeEmulator

SYMBOL = "BTC/USDT"
ORDERS = "orders:" + SYMBOL  # ccxt's message hash for watch_orders(SYMBOL)
WAIT = 5.0  # seconds any single wait may take

pytestmark = pytest.mark.timeout(30)


async def collect(
    watch: Callable[[], Awaitable[list[dict[str, Any]]]],
    done: Callable[[list[dict[str, Any]]], bool],
    rounds: int = 10,
) -> list[dict[str, Any]]:
    """Call a ccxt ``watch_*`` until ``done`` holds for what it returned (bounded); snapshots,
    since ccxt updates its cached structures in place."""
    seen: list[dict[str, Any]] = []
    for _ in range(rounds):
        seen.extend(copy.deepcopy(await asyncio.wait_for(watch(), WAIT)))
        if done(seen):
            return seen
    raise AssertionError(f"not done after {rounds} updates: {seen}")


async def watching(
    client: Any,
    message_hash: str,
    watch: Callable[[], Awaitable[list[dict[str, Any]]]],
    done: Callable[[list[dict[str, Any]]], bool] = lambda seen: len(seen) >= 1,
) -> asyncio.Task[list[dict[str, Any]]]:
    """``collect`` in a task, returned once ccxt waits on ``message_hash``: an update arriving
    while no watch is pending only shows with the next one, so arm before acting."""
    task = asyncio.create_task(collect(watch, done))
    url = client.urls["api"]["ws"]["ws-api"]["spot"]
    async with asyncio.timeout(WAIT):
        while url not in client.clients or message_hash not in client.clients[url].futures:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    return task


async def subscribed(emu: ExchangeEmulator, sockets: int = 1) -> None:
    """Wait until ``sockets`` user-data connections hold a subscription."""
    async with asyncio.timeout(WAIT):
        while sum(1 for s in emu.user.sockets if s.listening) < sockets:
            await asyncio.sleep(0.01)


def statuses(orders: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    return [(o["info"]["x"], o["status"], o["filled"]) for o in orders]


def record(client: Any, handler: str) -> list[dict[str, Any]]:
    """Every message ccxt passes to its ``handler`` method, in order (e.g. each
    ``executionReport``: its order cache keeps only the latest state per order, so two reports
    arriving together show as one update)."""
    received: list[dict[str, Any]] = []
    handle = getattr(client, handler)

    def recording(ws_client: Any, message: dict[str, Any]) -> None:
        received.append(dict(message))
        handle(ws_client, message)

    setattr(client, handler, recording)
    return received


def test_market_order_streams_new_then_filled_with_trade_and_balances() -> None:
    config = EmulatorConfig(balances={"USDT": 50_000.0})
    with ExchangeEmulator(config) as emu:

        async def scenario() -> None:
            client = emu.pro_client()
            reports = record(client, "handle_order_update")
            try:
                await client.load_markets()
                opened = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                emu.delay_fills(1)  # NEW now, filled at the next bar's open
                placed = await client.create_order(
                    SYMBOL, "market", "buy", 0.5, params={"newClientOrderId": "u-1"}
                )
                assert placed["status"] == "open"
                assert statuses(await opened) == [("NEW", "open", 0.0)]

                closed = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                trades = await watching(
                    client, "myTrades:" + SYMBOL, lambda: client.watch_my_trades(SYMBOL)
                )
                balances = await watching(
                    client,
                    "spot:balance",
                    lambda: _as_list(client.watch_balance()),
                    lambda s: s[-1]["BTC"]["free"] > 0,
                )
                await asyncio.to_thread(emu.advance)
                price = emu.venue.price("BTCUSDT")  # the new bar's open
                (filled,) = await closed
                assert (filled["info"]["x"], filled["status"], filled["filled"]) == (
                    "TRADE", "closed", 0.5,
                )  # fmt: skip
                assert (filled["id"], filled["clientOrderId"]) == (placed["id"], "u-1")
                assert filled["cost"] == pytest.approx(0.5 * price)
                assert filled["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0005)}
                info = filled["info"]
                assert (float(info["l"]), float(info["L"]), info["N"]) == (0.5, price, "BTC")
                assert float(info["n"]) == pytest.approx(0.0005) and info["t"] >= 1

                (trade,) = await trades
                rest = (await client.fetch_my_trades(SYMBOL))[-1]
                assert trade["id"] == rest["id"] == str(info["t"])
                assert (trade["order"], trade["side"], trade["takerOrMaker"]) == (
                    placed["id"], "buy", "taker",
                )  # fmt: skip
                assert (trade["price"], trade["amount"]) == (pytest.approx(price), 0.5)
                assert trade["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0005)}

                balance = (await balances)[-1]
                assert balance["BTC"] == {"free": 0.4995, "used": 0.0, "total": 0.4995}
                assert balance["USDT"]["free"] == pytest.approx(50_000 - 0.5 * price)
                assert balance["USDT"]["used"] == 0.0

                # an immediate fill: NEW and TRADE come back to back
                sold = await client.create_order(SYMBOL, "market", "sell", 0.25)
                async with asyncio.timeout(WAIT):
                    while len(reports) < 4:
                        await asyncio.sleep(0.01)
                cached = client.orders.hashmap[SYMBOL][sold["id"]]
                assert (cached["status"], cached["filled"]) == ("closed", 0.25)
                assert [(r["x"], r["X"]) for r in reports] == [
                    ("NEW", "NEW"), ("TRADE", "FILLED"), ("NEW", "NEW"), ("TRADE", "FILLED"),
                ]  # fmt: skip
            finally:
                await client.close()

        asyncio.run(asyncio.wait_for(scenario(), 15))


def test_resting_limit_order_partial_fill_then_cancel() -> None:
    with ExchangeEmulator(EmulatorConfig(participation=0.25)) as emu:
        bar = emu.venue.bar("BTCUSDT")
        assert bar is not None
        limit = round((float(bar["open"]) + float(bar["low"])) / 2, 2)  # traded through, not now
        budget = emu.venue.floor_qty("BTCUSDT", float(bar["volume"]) * 0.25)
        qty = round(budget * 2, 5)

        async def scenario() -> list[dict[str, Any]]:
            client = emu.pro_client()
            try:
                await client.load_markets()
                seen: list[dict[str, Any]] = []
                update = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                placed = await client.create_order(
                    SYMBOL, "limit", "buy", qty, limit, params={"newClientOrderId": "rest-1"}
                )
                assert placed["status"] == "open"
                seen += await update
                update = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                await asyncio.to_thread(emu.advance)  # the bar trades through: a partial fill
                seen += await update
                update = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                await client.cancel_order(placed["id"], SYMBOL)
                seen += await update
                return seen
            finally:
                await client.close()

        seen = asyncio.run(asyncio.wait_for(scenario(), 15))
        assert statuses(seen) == [
            ("NEW", "open", 0.0),
            ("TRADE", "open", budget),
            ("CANCELED", "canceled", budget),
        ]
        new, partial, cancelled = (o["info"] for o in seen)
        assert (new["X"], new["w"], new["p"]) == ("NEW", True, f"{limit:.8f}")
        assert (partial["X"], partial["m"], float(partial["L"])) == (
            "PARTIALLY_FILLED",
            True,
            limit,
        )
        assert float(partial["l"]) == float(partial["z"]) == budget
        assert float(partial["Y"]) == pytest.approx(budget * limit)
        assert partial["T"] == new["O"] + 3_599_999  # at the bar's close
        assert (cancelled["C"], cancelled["w"]) == ("rest-1", False)
        assert cancelled["c"] == f"cancel{cancelled['i']}"  # the cancel request's own id
        assert seen[-1]["clientOrderId"] == "rest-1"
        assert emu.venue.locked["USDT"] == pytest.approx(0.0)


def test_wrong_keys_are_refused() -> None:
    """The WebSocket API answers a badly keyed subscription with Binance's error frame. ccxt
    4.5.x then raises KeyError('spot') instead of AuthenticationError: its handler for the error
    frame already removed the subscription its ``except`` clause removes again."""
    with ExchangeEmulator() as emu:

        async def scenario() -> None:
            for api_key, secret, status, code in (
                ("someone-else", None, 401, -2015),
                (None, "not-the-secret", 400, -1022),
            ):
                client = emu.pro_client(api_key, secret)
                client.options["fetchCurrencies"] = False  # signed: would fail before the stream
                errors = record(client, "handle_ws_error")
                try:
                    await client.load_markets()
                    with pytest.raises((ccxt.AuthenticationError, KeyError)):
                        await asyncio.wait_for(client.watch_orders(SYMBOL), WAIT)
                finally:
                    await client.close()
                assert [(e["status"], e["error"]["code"]) for e in errors] == [(status, code)]
            assert not any(s.listening for s in emu.user.sockets)
            async with aiohttp.ClientSession() as session:
                path = f"{emu.url}/api/v3/userDataStream"
                for headers, status, code in (
                    ({}, 401, -2014),
                    ({"X-MBX-APIKEY": "no"}, 401, -2015),
                ):
                    async with session.post(path, headers=headers) as response:
                        assert response.status == status
                        assert (await response.json())["code"] == code
                key = {"X-MBX-APIKEY": emu.config.api_key}
                for method in ("PUT", "DELETE"):
                    async with session.request(
                        method, f"{path}?listenKey={'a' * 60}", headers=key
                    ) as r:
                        assert r.status == 400
                        assert await r.json() == {
                            "code": -1125,
                            "msg": "This listenKey does not exist.",
                        }
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(f"{emu.ws_url}/{'a' * 60}")
                assert refused.value.status == 400

        asyncio.run(asyncio.wait_for(scenario(), 15))
        assert emu.user.handshakes == 2 and not emu.venue.orders


def test_dropped_user_stream_is_resubscribed_by_the_next_watch() -> None:
    """ccxt.pro does not reconnect on its own: the pending watch fails with NetworkError and the
    next ``watch_*`` call opens a new connection and subscribes again."""
    with ExchangeEmulator() as emu:

        async def scenario() -> None:
            client = emu.pro_client()
            try:
                await client.load_markets()
                pending = asyncio.create_task(client.watch_orders(SYMBOL))
                await subscribed(emu)
                assert await asyncio.to_thread(emu.drop_websockets) == 1
                with pytest.raises(ccxt.NetworkError):
                    await asyncio.wait_for(pending, WAIT)
                watch = await watching(client, ORDERS, lambda: client.watch_orders(SYMBOL))
                await subscribed(emu)
                assert emu.user.handshakes == 2
                placed = await client.create_order(SYMBOL, "market", "buy", 0.01)
                assert [o["id"] for o in await watch] == [placed["id"]]
            finally:
                await client.close()

        asyncio.run(asyncio.wait_for(scenario(), 15))


# -- the protocols without ccxt ---------------------------------------------------------------


def _signed(emu: ExchangeEmulator, **extra: Any) -> dict[str, Any]:
    params = {"apiKey": emu.config.api_key, "timestamp": int(time.time() * 1000), **extra}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    secret = emu.config.secret.encode()
    return {**params, "signature": hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()}


def test_ws_api_protocol_and_order_lifecycle_events() -> None:
    with ExchangeEmulator() as emu:
        client = emu.client()
        client.load_markets()
        price = emu.venue.price("BTCUSDT")

        async def scenario() -> None:
            async with aiohttp.ClientSession() as session, session.ws_connect(emu.ws_api_url) as ws:

                async def call(method: str, params: Any = None, id_: Any = 1) -> Any:
                    request = {"id": id_, "method": method}
                    if params is not None:
                        request["params"] = params
                    await ws.send_json(request)
                    return await ws.receive_json(timeout=WAIT)

                assert await call("ping") == {"id": 1, "status": 200, "result": {}}
                assert (await call("time", id_="t"))["result"] == {"serverTime": emu.venue.now_ms}
                assert (await call("nope"))["error"]["code"] == -1020
                bad = await call("userDataStream.subscribe.signature", {"apiKey": "x"})
                assert (bad["status"], bad["error"]["code"]) == (401, -2015)
                reply = await call("userDataStream.subscribe.signature", _signed(emu), "s")
                assert reply == {"id": "s", "status": 200, "result": {"subscriptionId": 0}}

                # an IOC limit that cannot fill now: NEW then EXPIRED
                await asyncio.to_thread(
                        client.create_order, SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2),
                        {"timeInForce": "IOC"},
                    )  # fmt: skip
                events = [await ws.receive_json(timeout=WAIT) for _ in range(4)]
                assert {e["subscriptionId"] for e in events} == {0}
                kinds = [(e["event"]["e"], e["event"].get("x")) for e in events]
                assert kinds == [
                    ("executionReport", "NEW"),
                    ("outboundAccountPosition", None),
                    ("executionReport", "EXPIRED"),
                    ("outboundAccountPosition", None),
                ]
                locked = {b["a"]: float(b["l"]) for b in events[1]["event"]["B"]}
                assert locked == {
                    "BTC": 0.0,
                    "USDT": pytest.approx(0.01 * round(price * 0.9, 2)),
                }
                assert {b["a"]: float(b["l"]) for b in events[3]["event"]["B"]}["USDT"] == 0.0

                # a delayed market fill: NEW now, the TRADE when the clock moves
                emu.delay_fills(1)
                await asyncio.to_thread(client.create_order, SYMBOL, "market", "buy", 0.01)
                new = [await ws.receive_json(timeout=WAIT) for _ in range(2)]
                assert (new[0]["event"]["x"], new[0]["event"]["X"]) == ("NEW", "NEW")
                await asyncio.to_thread(emu.advance)
                fill = [await ws.receive_json(timeout=WAIT) for _ in range(2)]
                report = fill[0]["event"]
                assert (report["x"], report["X"], report["t"]) == ("TRADE", "FILLED", 1)
                assert float(report["L"]) == pytest.approx(emu.venue.price("BTCUSDT"))

                assert (await call("userDataStream.unsubscribe", {}, 9))["result"] == {}
                await asyncio.to_thread(client.create_order, SYMBOL, "market", "sell", 0.005)
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive_json(timeout=0.3)  # unsubscribed: nothing comes

        asyncio.run(asyncio.wait_for(scenario(), 15))


def test_listen_key_endpoints_and_stream() -> None:
    with ExchangeEmulator() as emu:
        client = emu.client()
        client.load_markets()

        async def scenario() -> None:
            key = {"X-MBX-APIKEY": emu.config.api_key}
            path = f"{emu.url}/api/v3/userDataStream"
            async with aiohttp.ClientSession() as session:
                async with session.post(path, headers=key) as response:
                    listen_key = (await response.json())["listenKey"]
                assert len(listen_key) == 60 and listen_key.isalnum()
                async with session.post(path, headers=key) as response:
                    assert (await response.json())["listenKey"] == listen_key  # still alive
                async with session.put(f"{path}?listenKey={listen_key}", headers=key) as response:
                    assert (response.status, await response.json()) == (200, {})
                async with session.ws_connect(f"{emu.ws_url}/{listen_key}") as ws:
                    await asyncio.to_thread(client.create_order, SYMBOL, "market", "buy", 0.01)
                    events = [await ws.receive_json(timeout=WAIT) for _ in range(4)]
                    assert [(e["e"], e.get("x")) for e in events] == [
                        ("executionReport", "NEW"),
                        ("outboundAccountPosition", None),
                        ("executionReport", "TRADE"),
                        ("outboundAccountPosition", None),
                    ]
                    assert await asyncio.to_thread(emu.expire_listen_keys) == [listen_key]
                    expired = await ws.receive_json(timeout=WAIT)
                    assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == listen_key
                    closed = await ws.receive(timeout=WAIT)
                    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                async with session.put(f"{path}?listenKey={listen_key}", headers=key) as response:
                    assert (await response.json())["code"] == -1125  # expired
                async with session.post(path, headers=key) as response:
                    fresh = (await response.json())["listenKey"]
                assert fresh != listen_key
                async with session.ws_connect(f"{emu.ws_url}/{fresh}") as ws:
                    async with session.delete(f"{path}?listenKey={fresh}", headers=key) as response:
                        assert await response.json() == {}
                    closed = await ws.receive(timeout=WAIT)
                    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                    emu.refuse_websockets(1)
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await session.ws_connect(f"{emu.ws_url}/{fresh}")
                    assert refused.value.status == 503

        asyncio.run(asyncio.wait_for(scenario(), 15))
        assert emu.user.listen_keys == {}


async def _as_list(balance: Awaitable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await balance]
