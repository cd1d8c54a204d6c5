"""A real HTTP server on 127.0.0.1 that speaks Binance spot's public REST API for klines.

Serves ``/api/v3/exchangeInfo``, ``/api/v3/time`` and ``/api/v3/klines`` in Binance's own field
layout, from real candles, as if "now" were ``now`` (so the last candle is still open), with
per-request fault injection (429 + Retry-After, 5xx, slow responses, a permanent outage).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
from local_http import JsonHandler, serve

INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
MAX_LIMIT = 1000


@dataclass
class Fault:
    """One injected response: an HTTP status (0: answer normally) after ``delay`` seconds."""

    status: int = 0
    retry_after: str | None = None
    delay: float = 0.0
    body: str | None = None


def _num(value: float) -> str:
    return str(np.format_float_positional(value, trim="-"))


@dataclass
class BinanceState:
    """What the server serves and what it has seen."""

    candles: pd.DataFrame
    interval: str
    now: pd.Timestamp
    markets: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
    )
    faults: deque[Fault] = field(default_factory=deque)
    ok_klines_before_outage: int | None = None
    requests: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def klines_requests(self) -> list[dict[str, str]]:
        return [q for p, q, _ in self.requests if p == "/api/v3/klines"]

    def served_closed(self) -> pd.DataFrame:
        """The candles a correct client must end with: open ones (open + bar > now) excluded."""
        step = pd.Timedelta(milliseconds=INTERVAL_MS[self.interval])
        return self.candles[self.candles.index + step <= self.now]

    def kline_rows(self, start: int | None, end: int | None, limit: int) -> list[list[Any]]:
        stamps = self.candles.index.asi8 // 1_000_000
        now_ms = self.now.value // 1_000_000
        mask = stamps <= now_ms
        if start is not None:
            mask &= stamps >= start
        if end is not None:
            mask &= stamps <= end
        chosen = self.candles[mask].iloc[:limit]
        step = INTERVAL_MS[self.interval]
        rows = []
        for ts, row in zip(chosen.index.asi8 // 1_000_000, chosen.itertuples(), strict=True):
            quote_volume = row.volume * row.close
            rows.append(
                [
                    int(ts),
                    _num(row.open),
                    _num(row.high),
                    _num(row.low),
                    _num(row.close),
                    _num(row.volume),
                    int(ts) + step - 1,
                    _num(quote_volume),
                    1000,
                    _num(row.volume / 2),
                    _num(quote_volume / 2),
                    "0",
                ]
            )
        return rows

    def exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.now.value // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s, b, q) for s, (b, q) in self.markets.items()],
        }


SPOT_FILTERS: list[dict[str, Any]] = [
    {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    },
    {
        "filterType": "LOT_SIZE",
        "minQty": "0.00001000",
        "maxQty": "9000.00000000",
        "stepSize": "0.00001000",
    },
    {"filterType": "ICEBERG_PARTS", "limit": 10},
    {
        "filterType": "MARKET_LOT_SIZE",
        "minQty": "0.00000000",
        "maxQty": "83.05753451",
        "stepSize": "0.00000000",
    },
    {
        "filterType": "TRAILING_DELTA",
        "minTrailingAboveDelta": 10,
        "maxTrailingAboveDelta": 2000,
        "minTrailingBelowDelta": 10,
        "maxTrailingBelowDelta": 2000,
    },
    {
        "filterType": "PERCENT_PRICE_BY_SIDE",
        "bidMultiplierUp": "5",
        "bidMultiplierDown": "0.2",
        "askMultiplierUp": "5",
        "askMultiplierDown": "0.2",
        "avgPriceMins": 5,
    },
    {
        "filterType": "NOTIONAL",
        "minNotional": "5.00000000",
        "applyMinToMarket": True,
        "maxNotional": "9000000.00000000",
        "applyMaxToMarket": False,
        "avgPriceMins": 5,
    },
    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
]
"""Binance spot's filter set for a BTC/USDT-like market, as exchangeInfo lists it."""


def _symbol_info(symbol: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": SPOT_FILTERS,
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _error(code: int, msg: str) -> str:
    return json.dumps({"code": code, "msg": msg})


class _Handler(JsonHandler):
    def do_GET(self) -> None:
        state = self.server.state
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with state.lock:
            state.requests.append((url.path, query, time.monotonic()))
            fault = self._next_fault(state, url.path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = fault.body or _error(-1003, "Too many requests; please use websockets.")
            self._send(fault.status, body, headers)
            return
        self._route(state, url.path, query)

    def _next_fault(self, state: BinanceState, path: str) -> Fault | None:
        if path != "/api/v3/klines":
            return None
        if state.faults:
            return state.faults.popleft()
        if state.ok_klines_before_outage is not None:
            served = sum(1 for p, _, _ in state.requests[:-1] if p == path)
            if served >= state.ok_klines_before_outage:
                return Fault(
                    503,
                    body=_error(
                        -1001, "Internal error; unable to process your request. Please try again."
                    ),
                )
        return None

    def _route(self, state: BinanceState, path: str, query: dict[str, str]) -> None:
        if path == "/api/v3/time":
            self._send(200, json.dumps({"serverTime": state.now.value // 1_000_000}))
        elif path == "/api/v3/exchangeInfo":
            self._send(200, json.dumps(state.exchange_info()))
        elif path == "/api/v3/klines":
            self._klines(state, query)
        else:
            self._send(404, "<html><body><h1>404 Not Found</h1></body></html>", ctype="text/html")

    def _klines(self, state: BinanceState, query: dict[str, str]) -> None:
        if query.get("symbol") not in state.markets:
            self._send(400, _error(-1121, "Invalid symbol."))
            return
        if query.get("interval") not in INTERVAL_MS:
            self._send(400, _error(-1120, "Invalid interval."))
            return
        limit = int(query.get("limit", 500))
        if not 1 <= limit <= MAX_LIMIT:
            self._send(400, _error(-1130, "Data sent for parameter 'limit' is not valid."))
            return
        if query["interval"] != state.interval:
            self._send(200, "[]")
            return
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        self._send(200, json.dumps(state.kline_rows(start, end, limit)))


@contextmanager
def serve_binance(state: BinanceState) -> Iterator[str]:
    """Run the server in a thread on a free port; yields its base URL."""
    with serve(_Handler, state) as url:
        yield url


def api_urls(base: str) -> dict[str, str]:
    """``exchange.urls['api']`` overrides pointing ccxt's binance spot endpoints at ``base``."""
    return {"public": f"{base}/api/v3", "private": f"{base}/api/v3", "v1": f"{base}/api/v1"}
