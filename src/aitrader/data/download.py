"""Download candles from exchanges (ccxt) and Yahoo into the store: paged, resumable, incremental.

Pages are merged into the store every ``flush_pages`` pages or ``flush_seconds`` seconds and when
a range ends or fails (``Store.append`` is atomic), so a process killed half-way keeps what it had
stored, and the next run asks only for what is missing: before the first
stored candle (when ``since`` is earlier) and after the last one. The still-open candle is never
stored.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from aitrader.config import DownloadConfig
from aitrader.data.provenance import OnConflict, Write, check_source
from aitrader.data.sources import CandleSource
from aitrader.data.store import DatasetKey, DatasetMeta, Store
from aitrader.data.timeframes import timeframe_delta
from aitrader.errors import ConfigError, DataError

log = logging.getLogger(__name__)

YAHOO = "yahoo"
CCXT_PREFIX = "ccxt:"


@dataclass(frozen=True)
class SourceOverrides:
    """Where to reach sources instead of their public URLs (testnet, proxy, local server).

    ``urls`` maps a source name to API URL keys and URLs: ``{"binance": {"public": URL}}``;
    Yahoo takes the key ``base``. ``market_types`` limits which ccxt market lists are loaded.
    """

    urls: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    market_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one series: bars covered so far out of the bars expected."""

    key: DatasetKey
    done: int
    total: int
    rows_added: int
    finished: bool = False


ProgressFn = Callable[[ProgressEvent], None]
Window = tuple[pd.Timestamp | None, pd.Timestamp | None]
"""``(since, until)``: the bars from ``since`` up to ``until`` (None: open-ended)."""


@dataclass
class DownloadResult:
    """What one series' download or sync did."""

    dataset: str
    source: str
    status: str
    rows_added: int = 0
    conflicts: int = 0
    pages: int = 0
    skipped_rows: int = 0
    open_candle_dropped: bool = False
    rows: int = 0
    first: str | None = None
    last: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_source_label(source_name: str) -> str:
    """The ``source`` written into the store's metadata for downloads from ``source_name``."""
    return YAHOO if source_name == YAHOO else CCXT_PREFIX + source_name


def open_source(
    name: str, config: DownloadConfig, overrides: SourceOverrides | None = None
) -> CandleSource:
    """A CandleSource for ``yahoo`` or any ccxt exchange id."""
    overrides = overrides or SourceOverrides()
    urls = dict(overrides.urls.get(name.lower(), {}))
    if name.lower() == YAHOO:
        from aitrader.data.sources.yahoo import YAHOO_BASE_URL, YahooSource

        return YahooSource(config, base_url=urls.get("base", YAHOO_BASE_URL))
    from aitrader.venues.ccxt.data import ExchangeSource, make_exchange

    exchange = make_exchange(name, config, urls or None, overrides.market_types or None)
    return ExchangeSource(exchange, config)


def download(
    store: Store,
    source: str | CandleSource,
    symbols: Sequence[str],
    timeframe: str,
    window: Window,
    config: DownloadConfig,
    progress: ProgressFn | None = None,
    overrides: SourceOverrides | None = None,
) -> list[DownloadResult]:
    """Fetch ``window`` (``[since, until)``, either end open: None) of every symbol into the
    store; only missing bars are asked for.

    Everything is validated (source, timeframe, symbols) before the first candle is fetched.
    Raises SourceError (TransientSourceError once retries are spent); pages already stored stay.
    """
    if not symbols:
        raise ConfigError("no symbols given (use --symbol, e.g. --symbol BTC/USDT)")
    _check_range(*window)
    src = open_source(source, config, overrides) if isinstance(source, str) else source
    try:
        src.validate(symbols, timeframe)
        return [
            _download_one(store, src, DatasetKey(src.name, s, timeframe), window, config, progress)
            for s in symbols
        ]
    finally:
        if isinstance(source, str):
            src.close()


def sync(
    store: Store,
    config: DownloadConfig,
    until: pd.Timestamp | None = None,
    progress: ProgressFn | None = None,
    overrides: SourceOverrides | None = None,
) -> list[DownloadResult]:
    """Bring every downloaded series in the store up to date; imported ones are skipped.

    A failing series is reported (status ``failed``) and the others still run.
    """
    results: list[DownloadResult] = []
    groups: dict[str, list[DatasetMeta]] = {}
    for meta in store.list():
        name = _downloaded_from(meta)
        if name is None:
            results.append(_skipped(meta))
        else:
            groups.setdefault(name, []).append(meta)
    for name, metas in groups.items():
        results.extend(_sync_group(store, name, metas, config, until, progress, overrides))
    return sorted(results, key=lambda r: r.dataset)


def _sync_group(
    store: Store,
    name: str,
    metas: list[DatasetMeta],
    config: DownloadConfig,
    until: pd.Timestamp | None,
    progress: ProgressFn | None,
    overrides: SourceOverrides | None,
) -> list[DownloadResult]:
    results = []
    try:
        src = open_source(name, config, overrides)
    except DataError as exc:
        return [_failed(m.key, name, exc) for m in metas]
    try:
        for meta in metas:
            try:
                src.validate([meta.symbol], meta.timeframe)
                window = (None, until)
                results.append(_download_one(store, src, meta.key, window, config, progress))
            except (DataError, ConfigError) as exc:
                log.error("sync failed", extra={"dataset": str(meta.key), "error": str(exc)})
                results.append(_failed(meta.key, name, exc))
    finally:
        src.close()
    return results


def _downloaded_from(meta: DatasetMeta) -> str | None:
    """The source to sync a series from, or None for imported / derived series."""
    if meta.source == YAHOO:
        return YAHOO
    if meta.source.startswith(CCXT_PREFIX):
        return meta.source.removeprefix(CCXT_PREFIX) or meta.exchange
    return None


def _skipped(meta: DatasetMeta) -> DownloadResult:
    return DownloadResult(
        dataset=str(meta.key),
        source=meta.source,
        status="skipped",
        rows=meta.rows,
        first=meta.first,
        last=meta.last,
        message=f"not downloaded from an exchange or Yahoo (source {meta.source}); nothing to sync",
    )


def _failed(key: DatasetKey, name: str, exc: Exception) -> DownloadResult:
    return DownloadResult(
        dataset=str(key), source=store_source_label(name), status="failed", message=str(exc)
    )


def _check_range(since: pd.Timestamp | None, until: pd.Timestamp | None) -> None:
    for label, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ConfigError(f"--{label} {value} must be a UTC timestamp")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {since} must be earlier than --until {until}")


def missing_ranges(
    store: Store, key: DatasetKey, since: pd.Timestamp | None, end: pd.Timestamp
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Bar-open ranges ``[start, stop)`` not yet stored: before the first and after the last."""
    step = timeframe_delta(key.timeframe)
    meta = store.metadata(key) if store.exists(key) else None
    if meta is None or meta.first is None or meta.last is None:
        if since is None:
            raise ConfigError(f"{key}: nothing stored yet; give a start date (--since 2021-01-01)")
        return [(since, end)] if since < end else []
    first, last = pd.Timestamp(meta.first), pd.Timestamp(meta.last)
    ranges = []
    if since is not None and since < first:
        ranges.append((since, min(first, end)))
    resume = last + step if since is None else max(last + step, since)
    if resume < end:
        ranges.append((resume, end))
    return ranges


@dataclass
class _Run:
    """Mutable tally of one series' download."""

    key: DatasetKey
    total: int
    progress: ProgressFn | None
    flush_pages: int
    flush_seconds: float
    write: Write
    done: int = 0
    added: int = 0
    pages: int = 0
    skipped: int = 0
    open_dropped: bool = False
    conflicts: int = 0
    meta: DatasetMeta | None = None

    def report(self, finished: bool = False) -> None:
        if self.progress is not None:
            done = self.total if finished else min(self.done, self.total)
            self.progress(ProgressEvent(self.key, done, self.total, self.added, finished))


def _download_one(
    store: Store,
    src: CandleSource,
    key: DatasetKey,
    window: Window,
    config: DownloadConfig,
    progress: ProgressFn | None,
) -> DownloadResult:
    since, until = window
    now = src.now()
    end = min(until, now) if until is not None else now
    ranges = missing_ranges(store, key, since, end)
    step = timeframe_delta(key.timeframe)
    total = sum(max(1, math.ceil((stop - start) / step)) for start, stop in ranges)
    write = Write(
        store_source_label(src.name),
        "download",
        OnConflict(config.on_conflict),
        allow_other_source=config.allow_other_source,
    )
    if store.exists(key):  # refuse before fetching anything, not after the first pages
        check_source(str(key), store.metadata(key).source, write)
    run = _Run(key, total, progress, config.flush_pages, config.flush_seconds, write)
    run.report()
    for start, stop in ranges:
        _fetch_range(store, src, run, start, stop, now)
    run.report(finished=True)
    meta = run.meta or (store.metadata(key) if store.exists(key) else None)
    status = "downloaded" if run.added else "up-to-date"
    log.info(
        "download finished",
        extra={"dataset": str(key), "rows_added": run.added, "pages": run.pages, "status": status},
    )
    return DownloadResult(
        dataset=str(key),
        source=store_source_label(src.name),
        status=status,
        rows_added=run.added,
        conflicts=run.conflicts,
        pages=run.pages,
        skipped_rows=run.skipped,
        open_candle_dropped=run.open_dropped,
        rows=meta.rows if meta else 0,
        first=meta.first if meta else None,
        last=meta.last if meta else None,
    )


def _fetch_range(
    store: Store,
    src: CandleSource,
    run: _Run,
    start: pd.Timestamp,
    stop: pd.Timestamp,
    now: pd.Timestamp,
) -> None:
    """Page through ``[start, stop)``, storing each page's closed candles as it arrives."""
    buffer = _PageBuffer(store, run, run.write)
    try:
        _page_through(src, run, buffer, start, stop, now)
    finally:
        buffer.flush()


class _PageBuffer:
    """Collects pages and merges them into the store every few pages or seconds.

    Rewriting the whole series after every page would make long downloads quadratic; buffering
    bounds that, and a killed process loses at most the unflushed pages, which the next run
    fetches again (it resumes from the last stored candle).
    """

    def __init__(self, store: Store, run: _Run, write: Write) -> None:
        self.store, self.run, self.write = store, run, write
        self.frames: list[pd.DataFrame] = []
        self.last_flush = time.monotonic()

    def add(self, candles: pd.DataFrame) -> None:
        if len(candles):
            self.frames.append(candles)
        due = time.monotonic() - self.last_flush >= self.run.flush_seconds
        if len(self.frames) >= self.run.flush_pages or (due and self.frames):
            self.flush()

    def flush(self) -> None:
        if self.frames:
            merged = pd.concat(self.frames)
            merged = merged[~merged.index.duplicated(keep="last")].sort_index()
            self.frames = []
            done = self.store.write(self.run.key, merged, self.write)
            self.run.meta = done.meta
            self.run.added += done.added
            self.run.conflicts += done.conflicts
        self.last_flush = time.monotonic()


def _page_through(
    src: CandleSource,
    run: _Run,
    buffer: _PageBuffer,
    start: pd.Timestamp,
    stop: pd.Timestamp,
    now: pd.Timestamp,
) -> None:
    step = timeframe_delta(run.key.timeframe)
    cursor = start
    max_pages = math.ceil((stop - start) / step) + 2
    for _ in range(max_pages):
        page = src.fetch_page(run.key.symbol, run.key.timeframe, cursor, stop)
        run.pages += 1
        run.skipped += page.skipped_rows
        candles = page.candles[(page.candles.index >= cursor) & (page.candles.index < stop)]
        closed = candles.index + step <= now
        run.open_dropped = run.open_dropped or not bool(closed.all())
        candles = candles[closed]
        buffer.add(candles)
        log.info(
            "page fetched",
            extra={
                "dataset": str(run.key),
                "page": run.pages,
                "cursor": cursor.isoformat(),
                "rows": len(candles),
                "skipped": page.skipped_rows,
            },
        )
        run.done += max(0, math.ceil((min(page.next_start, stop) - cursor) / step))
        run.report()
        if page.exhausted or page.next_start <= cursor or page.next_start >= stop:
            return
        cursor = page.next_start
