"""OHLCV from any ccxt exchange through the real ccxt client, with typed retries.

Transient failures (``ccxt.NetworkError``: timeouts, 429/418, 5xx, exchange not available) are
retried with backoff and honour ``Retry-After``; a host that does not resolve, a refused port, no
network or a failed TLS handshake stop at once (``sources.network``); everything else becomes a
SourceError naming the exchange, symbol and timeframe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import ccxt
import numpy as np
import pandas as pd

from aitrader.config import DownloadConfig
from aitrader.data.schema import COLUMNS, empty_candles
from aitrader.data.sources import Page, close_matches
from aitrader.data.sources.network import permanent_network_failure
from aitrader.data.sources.retry import Backoff, RetryableError, parse_retry_after
from aitrader.data.timeframes import timeframe_delta
from aitrader.errors import SourceError, UnknownName

log = logging.getLogger(__name__)

T = TypeVar("T")


def make_exchange(
    name: str,
    config: DownloadConfig,
    urls_override: Mapping[str, str] | None = None,
    market_types: Sequence[str] | None = None,
) -> Any:
    """A real ccxt exchange object with rate limiting on and our HTTP timeout.

    ``urls_override`` replaces entries of ``exchange.urls['api']`` (``public``, ``private`` ...),
    e.g. to reach a testnet, a proxy or a local server; ``market_types`` limits which market
    lists ``load_markets`` fetches (``spot``, ``linear``, ``inverse``).
    """
    exchange_id = name.strip().lower()
    if exchange_id not in ccxt.exchanges:
        raise UnknownName(
            f"unknown exchange {name!r}; close matches: "
            f"{close_matches(exchange_id, ccxt.exchanges)} "
            f"({len(ccxt.exchanges)} known: python -c 'import ccxt; print(ccxt.exchanges)')"
        )
    exchange = getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "timeout": int(config.timeout * 1000)}
    )
    if urls_override:
        _override_urls(exchange, urls_override)
    if market_types:
        current = exchange.options.get("fetchMarkets")
        types = list(market_types)
        exchange.options["fetchMarkets"] = (
            {**current, "types": types} if isinstance(current, dict) else types
        )
    return exchange


def _override_urls(exchange: Any, urls_override: Mapping[str, str]) -> None:
    api = exchange.urls.get("api")
    if isinstance(api, str):
        exchange.urls["api"] = next(iter(urls_override.values()))
        return
    unknown = sorted(set(urls_override) - set(api or {}))
    if unknown:
        raise SourceError(
            f"{exchange.id}: unknown API URL key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(api or {}))}"
        )
    exchange.urls["api"] = {**api, **urls_override}


class ExchangeSource:
    """Pages of closed candles from one ccxt exchange (implements ``CandleSource``)."""

    def __init__(
        self, exchange: Any, config: DownloadConfig, backoff: Backoff | None = None
    ) -> None:
        self.exchange = exchange
        self.config = config
        self.backoff = backoff or Backoff(config)
        self._markets_loaded = False
        self._status: int | None = None
        self._install_status_recorder()

    @property
    def name(self) -> str:
        return str(self.exchange.id)

    def validate(self, symbols: Sequence[str], timeframe: str) -> None:
        """Check the exchange serves OHLCV, the timeframe and every symbol, before any fetch."""
        ex = self.exchange
        if not ex.has.get("fetchOHLCV"):
            raise SourceError(f"{ex.id} does not provide OHLCV candles through ccxt")
        supported = list((ex.timeframes or {}).keys())
        if timeframe not in supported:
            raise UnknownName(
                f"{ex.id} does not support timeframe {timeframe!r}; supported: "
                f"{', '.join(supported) or 'none listed'}"
            )
        self._load_markets()
        for symbol in symbols:
            if symbol not in ex.markets:
                raise UnknownName(
                    f"{ex.id} has no market {symbol!r} (timeframe {timeframe}); symbols use "
                    f"ccxt's unified form BASE/QUOTE; close matches: "
                    f"{close_matches(symbol, list(ex.markets))}"
                )

    def now(self) -> pd.Timestamp:
        """Exchange time when it tells us (never later than our clock), else our clock."""
        local = pd.Timestamp.now(tz="UTC")
        if not self.exchange.has.get("fetchTime"):
            return local
        server_ms = self._call(self.exchange.fetch_time, "fetch_time")
        if server_ms is None:
            return local
        return min(local, pd.Timestamp(int(server_ms), unit="ms", tz="UTC"))

    def fetch_page(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Page:
        """One ``fetch_ohlcv`` call of ``page_limit`` candles from ``start``."""
        since = int(start.value // 1_000_000)
        rows = self._call(
            lambda: self.exchange.fetch_ohlcv(
                symbol, timeframe, since=since, limit=self.config.page_limit
            ),
            f"fetch_ohlcv {symbol} {timeframe} since {start.isoformat()}",
            symbol=symbol,
            timeframe=timeframe,
        )
        candles = ohlcv_to_frame(rows)
        candles = candles[candles.index >= start]
        if candles.empty:
            return Page(candles, start, exhausted=True)
        next_start = candles.index[-1] + timeframe_delta(timeframe)
        complete = candles.notna().all(axis=1)
        return Page(
            candles[complete],
            next_start,
            exhausted=next_start >= end,
            skipped_rows=int((~complete).sum()),
        )

    def close(self) -> None:
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()

    def _load_markets(self) -> None:
        if not self._markets_loaded:
            self._call(self.exchange.load_markets, "load_markets")
            self._markets_loaded = True

    def _install_status_recorder(self) -> None:
        """Remember each response's HTTP status: ccxt maps some 5xx bodies to ExchangeError."""
        original = self.exchange.on_rest_response

        def record(code: Any, *args: Any, **kwargs: Any) -> Any:
            self._status = int(code) if code is not None else None
            return original(code, *args, **kwargs)

        self.exchange.on_rest_response = record

    def _call(self, fn: Callable[[], T], what: str, symbol: str = "", timeframe: str = "") -> T:
        """Run a ccxt call with retries of transient errors; map the rest to SourceError."""
        context = " ".join(p for p in (self.exchange.id, symbol, timeframe) if p)

        def attempt() -> T:
            self._status = None
            try:
                return fn()
            except ccxt.BaseError as exc:
                permanent = permanent_network_failure(exc, context)
                if permanent is not None:
                    raise SourceError(permanent) from exc
                if self._is_transient(exc):
                    raise RetryableError(
                        f"{type(exc).__name__}: {exc}", self._retry_after()
                    ) from exc
                raise SourceError(_describe(exc, context, what)) from exc

        return self.backoff.call(attempt, f"{context}: {what}")

    def _is_transient(self, exc: Exception) -> bool:
        """Network trouble, rate limits and server-side (5xx) failures are worth a retry."""
        if isinstance(exc, ccxt.OperationFailed):
            return True
        status = self._status
        return status is not None and (status in (418, 429) or status >= 500)

    def _retry_after(self) -> float | None:
        """The ``Retry-After`` of the last response, when the failure came with one."""
        if self._status is None:
            return None
        headers = self.exchange.last_response_headers or {}
        return parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)


def _describe(exc: Exception, context: str, what: str) -> str:
    """A SourceError message for a non-transient ccxt error."""
    if isinstance(exc, ccxt.BadSymbol):
        return f"{context}: unknown or unsupported symbol ({exc})"
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return f"{context}: not allowed, check the API key ({exc})"
    return f"{context}: {what} failed: {type(exc).__name__}: {exc}"


def ohlcv_to_frame(rows: Sequence[Sequence[Any]] | None) -> pd.DataFrame:
    """ccxt ``[[ms, o, h, l, c, v], ...]`` → candle schema, sorted, duplicates dropped.

    Missing values (``None``) become NaN for the caller to drop and count.
    """
    if not rows:
        return empty_candles()
    array = np.asarray([list(r[:6]) for r in rows], dtype="float64")
    index = pd.DatetimeIndex(
        pd.to_datetime(array[:, 0].astype("int64"), unit="ms", utc=True), name="timestamp"
    ).as_unit("ns")
    frame = pd.DataFrame(array[:, 1:6], index=index, columns=list(COLUMNS))
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame
