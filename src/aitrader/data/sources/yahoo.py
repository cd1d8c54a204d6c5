"""Yahoo Finance chart API (``/v8/finance/chart/{symbol}``) over httpx, with typed retries.

Rows Yahoo sends as ``null`` (no trade) are dropped and counted, never filled. Daily and weekly
bars are labelled at 00:00 UTC of the exchange-local session date (weeks start on Monday),
hourly bars at their UTC open time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd

from aitrader.config import DownloadConfig
from aitrader.data.schema import COLUMNS, empty_candles
from aitrader.data.sources import Page
from aitrader.data.sources.network import permanent_network_failure
from aitrader.data.sources.retry import Backoff, RetryableError, parse_retry_after
from aitrader.data.timeframes import timeframe_delta
from aitrader.errors import SourceError, UnknownName

log = logging.getLogger(__name__)

YAHOO_BASE_URL = "https://query1.finance.yahoo.com"
INTERVALS: dict[str, str] = {"1h": "1h", "1d": "1d", "1w": "1wk"}
"""Our timeframe → Yahoo interval."""
INTRADAY_LIMIT_DAYS: dict[str, int] = {"1h": 730}
"""How far back Yahoo serves intraday bars, counted from now."""
USER_AGENT = "Mozilla/5.0 (compatible; aitrader/0.1; +https://github.com/)"
DAY = pd.Timedelta(days=1)


class YahooSource:
    """Pages of closed candles from Yahoo Finance (implements ``CandleSource``)."""

    def __init__(
        self,
        config: DownloadConfig,
        base_url: str = YAHOO_BASE_URL,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff(config)
        self.client = httpx.Client(
            timeout=config.timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=True
        )
        self._clock_offset = pd.Timedelta(0)

    @property
    def name(self) -> str:
        return "yahoo"

    def validate(self, symbols: Sequence[str], timeframe: str) -> None:
        """Check the timeframe, then ask Yahoo for five days of each symbol so typos fail early."""
        if timeframe not in INTERVALS:
            raise UnknownName(
                f"yahoo does not support timeframe {timeframe!r}; supported: {', '.join(INTERVALS)}"
            )
        for symbol in symbols:
            self._chart(symbol, timeframe, {"range": "5d", "interval": INTERVALS[timeframe]})

    def now(self) -> pd.Timestamp:
        """Our clock, moved back if Yahoo's ``Date`` header was behind it."""
        return pd.Timestamp.now(tz="UTC") + min(self._clock_offset, pd.Timedelta(0))

    def fetch_page(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Page:
        """Bars labelled in ``[start, start + page_limit bars)``, clipped to ``end``."""
        self._check_intraday_limit(symbol, timeframe, start)
        window_end = min(end, start + self.config.page_limit * timeframe_delta(timeframe))
        pad = DAY if timeframe != "1h" else pd.Timedelta(0)
        params = {
            "period1": str(int((start - pad).timestamp())),
            "period2": str(int((window_end + pad).timestamp())),
            "interval": INTERVALS[timeframe],
            "events": "div,splits",
            "includePrePost": "false",
        }
        result = self._chart(symbol, timeframe, params)
        candles, skipped = parse_chart_result(result, timeframe, f"yahoo {symbol} {timeframe}")
        candles = candles[(candles.index >= start) & (candles.index < window_end)]
        return Page(candles, window_end, exhausted=window_end >= end, skipped_rows=skipped)

    def close(self) -> None:
        self.client.close()

    def _check_intraday_limit(self, symbol: str, timeframe: str, start: pd.Timestamp) -> None:
        days = INTRADAY_LIMIT_DAYS.get(timeframe)
        if days is None:
            return
        earliest = self.now() - pd.Timedelta(days=days) + DAY
        if start < earliest:
            raise SourceError(
                f"yahoo {symbol} {timeframe}: Yahoo serves {timeframe} bars for the last {days} "
                f"days only; {start.isoformat()} is too early, use --since "
                f"{earliest.strftime('%Y-%m-%d')} or later (or timeframe 1d)"
            )

    def _chart(self, symbol: str, timeframe: str, params: dict[str, str]) -> dict[str, Any]:
        """GET the chart endpoint with retries; return ``chart.result[0]``."""
        url = f"{self.base_url}/v8/finance/chart/{quote(symbol, safe='')}"
        what = f"yahoo {symbol} {timeframe}"
        response = self.backoff.call(lambda: self._get(url, params, what), what)
        return _chart_result(response, what)

    def _get(self, url: str, params: dict[str, str], what: str) -> httpx.Response:
        try:
            response = self.client.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timed out after {self.config.timeout} s ({exc!r})") from exc
        except httpx.TransportError as exc:
            host = httpx.URL(url).netloc.decode() or self.base_url
            permanent = permanent_network_failure(exc, what, host)
            if permanent is not None:
                raise SourceError(permanent) from exc
            raise RetryableError(f"network error: {exc!r}") from exc
        self._note_server_date(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"HTTP {response.status_code} from {response.request.url}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _note_server_date(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            server = pd.Timestamp(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            return
        self._clock_offset = server.tz_convert("UTC") - pd.Timestamp.now(tz="UTC")


def _chart_result(response: httpx.Response, what: str) -> dict[str, Any]:
    """``chart.result[0]`` of a response; ``chart.error`` or a bad body → SourceError."""
    try:
        body = response.json()
    except ValueError:
        raise SourceError(
            f"{what}: HTTP {response.status_code}, not a JSON chart response: "
            f"{response.text[:200]!r}"
        ) from None
    chart = body.get("chart") if isinstance(body, dict) else None
    if not isinstance(chart, dict):
        raise SourceError(f"{what}: HTTP {response.status_code}, response has no 'chart' object")
    error = chart.get("error")
    if error:
        code = error.get("code", "?") if isinstance(error, dict) else "?"
        text = error.get("description", error) if isinstance(error, dict) else error
        raise SourceError(f"{what}: Yahoo says {code}: {text}")
    results = chart.get("result")
    if response.status_code != 200 or not results or not isinstance(results[0], dict):
        raise SourceError(f"{what}: HTTP {response.status_code} without chart data")
    return dict(results[0])


def parse_chart_result(
    result: dict[str, Any], timeframe: str, what: str
) -> tuple[pd.DataFrame, int]:
    """Candles of one chart result and the number of null (no-trade) rows dropped."""
    stamps = result.get("timestamp") or []
    if not stamps:
        return empty_candles(), 0
    quotes = ((result.get("indicators") or {}).get("quote") or [{}])[0] or {}
    columns = {}
    for name in COLUMNS:
        values = quotes.get(name)
        if values is None or len(values) != len(stamps):
            raise SourceError(f"{what}: quote field {name!r} missing or of the wrong length")
        columns[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
    index = _bar_labels(np.asarray(stamps, dtype="int64"), timeframe, result.get("meta") or {})
    frame = pd.DataFrame(columns, index=index)
    complete = frame.notna().all(axis=1)
    skipped = int((~complete).sum())
    frame = frame[complete]
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame, skipped


def _bar_labels(stamps: np.ndarray, timeframe: str, meta: dict[str, Any]) -> pd.DatetimeIndex:
    """UTC bar-open labels: hourly as sent, daily/weekly at the local session date 00:00 UTC."""
    utc = pd.DatetimeIndex(pd.to_datetime(stamps, unit="s", utc=True))
    if timeframe == "1h":
        return pd.DatetimeIndex(utc, name="timestamp").as_unit("ns")
    zone = meta.get("exchangeTimezoneName")
    try:
        local = utc.tz_convert(zone) if zone else utc + pd.Timedelta(seconds=meta["gmtoffset"])
    except (KeyError, TypeError, ValueError):
        local = utc
    days = pd.DatetimeIndex(local.tz_localize(None) if local.tz else local).normalize()
    if timeframe == "1w":
        days = days - pd.to_timedelta(days.day_of_week, unit="D")
    return pd.DatetimeIndex(days.tz_localize("UTC"), name="timestamp").as_unit("ns")
