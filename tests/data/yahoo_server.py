"""A real HTTP server on 127.0.0.1 that speaks Yahoo Finance's chart API (``/v8/finance/chart``).

Daily bars carry the session-open time (09:30 New York) as Yahoo sends them; the bar of "today"
carries the current time; rows listed in ``null_dates`` come back as ``null`` (no trade). Errors
use Yahoo's ``chart.error`` layout. Faults (429 + Retry-After, 5xx, slow) are injected per request.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pandas as pd
from binance_server import Fault
from local_http import JsonHandler, serve

ZONE = "America/New_York"
VALID = "[1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 1d, 5d, 1wk, 1mo, 3mo]"


@dataclass
class YahooState:
    """Daily and hourly candles per symbol, the simulated now, faults and a request log."""

    daily: dict[str, pd.DataFrame]
    now: pd.Timestamp
    hourly: dict[str, pd.DataFrame] = field(default_factory=dict)
    null_dates: set[pd.Timestamp] = field(default_factory=set)
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def data_requests(self) -> list[dict[str, str]]:
        return [q for _, q, _ in self.requests if "period1" in q]

    def raw_daily(self, symbol: str) -> pd.DataFrame:
        """Daily bars as Yahoo stamps them: 09:30 local, today's bar at the current time."""
        df = self.daily[symbol][self.daily[symbol].index <= self.now].copy()
        local = df.index.tz_localize(None).tz_localize(ZONE) + pd.Timedelta(hours=9, minutes=30)
        stamps = local.tz_convert("UTC")
        if len(stamps) and stamps[-1] > self.now - pd.Timedelta(days=1):
            stamps = stamps[:-1].append(pd.DatetimeIndex([self.now - pd.Timedelta(minutes=1)]))
        df["nulled"] = df.index.isin(list(self.null_dates))
        df.index = stamps
        return df

    def raw_weekly(self, symbol: str) -> pd.DataFrame:
        """Weekly bars (weeks start Monday), stamped at the week's first session open."""
        daily = self.raw_daily(symbol).drop(columns="nulled")
        week = daily.index.tz_convert(ZONE).tz_localize(None).to_period("W-SUN")
        grouped = daily.groupby(week)
        out = grouped.agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        out.index = pd.DatetimeIndex(grouped.apply(lambda g: g.index[0]).to_numpy())
        out["nulled"] = False
        return out

    def raw_hourly(self, symbol: str) -> pd.DataFrame:
        df = self.hourly[symbol][self.hourly[symbol].index <= self.now].copy()
        df["nulled"] = False
        return df


def _error(code: str, description: str) -> str:
    return json.dumps(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}
    )


def _result(symbol: str, frame: pd.DataFrame, interval: str, now: pd.Timestamp) -> dict[str, Any]:
    stamps = [int(t.timestamp()) for t in frame.index]
    nulled = frame["nulled"].to_numpy()

    def values(name: str, cast: type) -> list[Any]:
        return [None if n else cast(v) for v, n in zip(frame[name], nulled, strict=True)]

    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "PCX",
        "fullExchangeName": "NYSEArca",
        "instrumentType": "ETF",
        "firstTradeDate": 728317800,
        "regularMarketTime": int(now.timestamp()),
        "hasPrePostMarketData": True,
        "gmtoffset": -14400,
        "timezone": "EDT",
        "exchangeTimezoneName": ZONE,
        "regularMarketPrice": float(frame["close"].iloc[-1]) if len(frame) else None,
        "chartPreviousClose": float(frame["close"].iloc[0]) if len(frame) else None,
        "priceHint": 2,
        "dataGranularity": interval,
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    result: dict[str, Any] = {"meta": meta}
    if stamps:
        result["timestamp"] = stamps
        quote = {c: values(c, float) for c in ("open", "high", "low", "close")}
        quote["volume"] = values("volume", int)
        result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": quote["close"]}]}
    else:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return result


class _Handler(JsonHandler):
    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(self.server.state.now.to_pydatetime(), usegmt=True)

    def do_GET(self) -> None:
        state = self.server.state
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with state.lock:
            state.requests.append((url.path, query, time.monotonic()))
            fault = state.faults.popleft() if state.faults and "period1" in query else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, fault.body or "Too Many Requests\r\n", headers, "text/html")
            return
        prefix = "/v8/finance/chart/"
        if not url.path.startswith(prefix):
            self._send(404, _error("Not Found", "HTTP 404 Not Found"))
            return
        self._chart(state, unquote(url.path[len(prefix) :]), query)

    def _chart(self, state: YahooState, symbol: str, query: dict[str, str]) -> None:
        interval = query.get("interval", "1d")
        if interval not in {"1h", "1d", "1wk"}:
            self._send(
                422,
                _error(
                    "Unprocessable Entity",
                    f"Invalid input - interval={interval} is not supported. "
                    f"Valid intervals: {VALID}",
                ),
            )
            return
        tables = state.hourly if interval == "1h" else state.daily
        if symbol not in tables:
            self._send(404, _error("Not Found", "No data found, symbol may be delisted"))
            return
        raw = {"1h": state.raw_hourly, "1d": state.raw_daily, "1wk": state.raw_weekly}[interval]
        frame = raw(symbol)
        if "range" in query:
            frame = frame.iloc[-5:]
        else:
            start = pd.Timestamp(int(query["period1"]), unit="s", tz="UTC")
            end = pd.Timestamp(int(query["period2"]), unit="s", tz="UTC")
            if interval == "1h" and start < state.now - pd.Timedelta(days=730):
                self._send(
                    422,
                    _error(
                        "Unprocessable Entity",
                        f"1h data not available for startTime={query['period1']} "
                        f"and endTime={query['period2']}. The requested range "
                        "must be within the last 730 days.",
                    ),
                )
                return
            frame = frame[(frame.index >= start) & (frame.index < end)]
        body = {"chart": {"result": [_result(symbol, frame, interval, state.now)], "error": None}}
        self._send(200, json.dumps(body))


@contextmanager
def serve_yahoo(state: YahooState) -> Iterator[str]:
    """Run the server in a thread on a free port; yields its base URL."""
    with serve(_Handler, state) as url:
        yield url
