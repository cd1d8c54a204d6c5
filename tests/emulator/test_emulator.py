"""The exchange emulator through the real ccxt binance client: data, orders, auth, faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import ccxt
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.emulator import (
    EmulatorConfig,
    ExchangeEmulator,
    VenueError,
    order_rejected,
    rate_limited,
    slow,
    unavailable,
)
from aitrader.emulator.auth import verify

SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_sample("BTC-USD-1h")


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(balances={"USDT": 50_000.0, "BTC": 1.0})
    with ExchangeEmulator(config) as running:
        yield running


@pytest.fixture
def client(emu: ExchangeEmulator) -> Any:
    exchange = emu.client()
    exchange.load_markets()
    return exchange


def test_markets_and_filters(client: Any) -> None:
    market = client.market(SYMBOL)
    assert market["spot"] and market["id"] == "BTCUSDT"
    assert market["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert market["limits"]["cost"]["min"] == 5.0 and market["limits"]["amount"]["min"] == 1e-05


def test_ohlcv_is_the_real_replay_up_to_the_clock(
    emu: ExchangeEmulator, client: Any, candles: pd.DataFrame
) -> None:
    assert client.fetch_time() == emu.now.value // 1_000_000
    rows = client.fetch_ohlcv(SYMBOL, "1h", limit=5)
    closed = candles[candles.index < emu.now].iloc[-4:]
    assert [r[0] for r in rows[:4]] == list(closed.index.asi8 // 1_000_000)
    assert [r[4] for r in rows[:4]] == pytest.approx(list(closed["close"]))
    in_progress = rows[-1]
    open_price = candles.at[emu.now, "open"]
    assert in_progress[1:5] == pytest.approx([open_price] * 4) and in_progress[5] == 0
    emu.advance()
    again = client.fetch_ohlcv(SYMBOL, "1h", limit=2)
    assert again[0][2] == pytest.approx(candles.at[emu.now - pd.Timedelta(hours=1), "high"])
    with pytest.raises(ccxt.BadRequest):
        client.fetch_ohlcv(SYMBOL, "1m", limit=2)


def test_market_order_fills_at_the_open_and_moves_balances(
    emu: ExchangeEmulator, client: Any, candles: pd.DataFrame
) -> None:
    price = float(candles.at[emu.now, "open"])
    order = client.create_order(SYMBOL, "market", "buy", 0.5, params={"newClientOrderId": "m-1"})
    assert (order["status"], order["filled"], order["clientOrderId"]) == ("closed", 0.5, "m-1")
    assert order["average"] == pytest.approx(price)
    assert order["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0005)}
    balance = client.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(1.4995)
    assert balance["USDT"]["free"] == pytest.approx(50_000 - 0.5 * price, abs=1e-6)
    sold = client.create_order(SYMBOL, "market", "sell", 0.25)
    assert sold["fee"]["currency"] == "USDT"
    trades = client.fetch_my_trades(SYMBOL)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert trades[0]["order"] == order["id"] and trades[0]["takerOrMaker"] == "taker"


def test_limit_order_rests_then_fills_when_a_bar_trades_through(
    emu: ExchangeEmulator, client: Any, candles: pd.DataFrame
) -> None:
    future = candles[candles.index >= emu.now]
    limit = round(float(future["open"].iloc[0]) * 0.985, 2)
    crossing = future.index[(future["low"] < limit).to_numpy()][0]
    order = client.create_order(SYMBOL, "limit", "buy", 0.1, limit)
    assert order["status"] == "open"
    assert client.fetch_balance()["USDT"]["used"] == pytest.approx(0.1 * limit)
    assert [o["id"] for o in client.fetch_open_orders(SYMBOL)] == [order["id"]]
    while emu.now <= crossing - pd.Timedelta(hours=1):
        assert client.fetch_order(order["id"], SYMBOL)["status"] == "open"
        emu.advance()
    emu.advance()
    done = client.fetch_order(order["id"], SYMBOL)
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.1, limit)
    assert client.fetch_my_trades(SYMBOL)[-1]["takerOrMaker"] == "maker"
    assert client.fetch_open_orders(SYMBOL) == []
    assert client.fetch_balance()["USDT"]["used"] == pytest.approx(0.0)


def test_cancel_and_order_errors(client: Any) -> None:
    price = client.fetch_ticker(SYMBOL)["last"]
    order = client.create_order(SYMBOL, "limit", "sell", 0.2, round(price * 2, 2), params={
        "newClientOrderId": "dup-1"})  # fmt: skip
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order(SYMBOL, "limit", "sell", 0.2, round(price * 2, 2), params={
            "newClientOrderId": "dup-1"})  # fmt: skip
    assert client.cancel_order(order["id"], SYMBOL)["status"] == "canceled"
    assert client.fetch_order(order["id"], SYMBOL)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(order["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("999999", SYMBOL)
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(SYMBOL, "market", "buy", 5_000)
    # ccxt maps -1013 by URL: InvalidOrder on api.binance.com, its generic BadRequest elsewhere
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        client.create_order(SYMBOL, "market", "buy", 0.00001)
    assert client.fetch_balance()["BTC"]["free"] == pytest.approx(1.0)


def test_a_wrong_secret_or_key_is_rejected(emu: ExchangeEmulator) -> None:
    bad = emu.client(secret="not-the-secret")
    bad.options["fetchCurrencies"] = False
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        bad.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        emu.client(api_key="someone-else").fetch_balance()
    assert not emu.venue.orders


def test_a_skewed_timestamp_is_rejected(client: Any) -> None:
    client.options["timeDifference"] = 30_000  # our clock 30 s behind: outside recvWindow
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        client.create_order(SYMBOL, "market", "buy", 0.01)
    client.options["timeDifference"] = -5_000  # 5 s ahead of the server
    with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
        client.fetch_balance()
    client.options["timeDifference"] = 0
    assert client.fetch_balance()["BTC"]["free"] == pytest.approx(1.0)


def test_binance_documented_signature_example() -> None:
    """The HMAC example from Binance's API docs, with params in the query, body or both."""
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    keys = {"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A": secret}
    key = next(iter(keys))
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    params = dict(p.split("=") for p in f"{query}&{body}".split("&"))
    documented = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    verify(key, query, body + "&signature=" + documented, params, keys, now_ms=1499827320559)
    full = f"{query}&{body}"
    in_query = hmac.new(secret.encode(), full.encode(), hashlib.sha256).hexdigest()
    assert in_query == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    verify(key, f"{full}&signature={in_query}", "", params, keys, now_ms=1499827320559)
    tampered = full.replace("quantity=1", "quantity=2")
    with pytest.raises(VenueError, match="-1022"):
        verify(key, f"{tampered}&signature={in_query}", "", params, keys, now_ms=1499827320559)
    with pytest.raises(VenueError, match="-1021"):
        verify(key, f"{full}&signature={in_query}", "", params, keys, now_ms=1499827330000)


def test_missing_api_key_header_is_2014(emu: ExchangeEmulator) -> None:
    request = urllib.request.Request(f"{emu.url}/api/v3/account?timestamp={int(time.time())}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["code"] == -2014


def test_faults_raise_ccxt_network_errors(emu: ExchangeEmulator, client: Any) -> None:
    emu.inject(rate_limited(retry_after=3, path="/api/v3/klines"))
    with pytest.raises(ccxt.DDoSProtection):
        client.fetch_ohlcv(SYMBOL, "1h", limit=2)
    assert client.last_response_headers["Retry-After"] == "3"
    emu.inject(unavailable(503), times=2)
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.fetch_balance()
    emu.inject(slow(1.5, path="/api/v3/account"))
    client.timeout = 300
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_balance()
    client.timeout = 5000
    assert client.fetch_ohlcv(SYMBOL, "1h", limit=2)  # healthy again
    emu.inject(order_rejected())
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(SYMBOL, "market", "buy", 0.01)
    assert not emu.venue.orders


def test_delayed_fill_happens_at_the_next_open(
    emu: ExchangeEmulator, client: Any, candles: pd.DataFrame
) -> None:
    emu.delay_fills(1)
    order = client.create_order(SYMBOL, "market", "buy", 0.1, params={"newClientOrderId": "d-1"})
    assert (order["status"], order["filled"]) == ("open", 0.0)
    emu.advance()
    done = client.fetch_order(order["id"], SYMBOL)
    assert done["status"] == "closed"
    assert done["average"] == pytest.approx(candles.at[emu.now, "open"])
