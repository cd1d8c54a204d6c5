"""Local columnar store: one Parquet file per exchange/symbol/timeframe, DuckDB views over them.

Writes are atomic (temp file + fsync + rename) and serialised per data set with a file lock, so a
process killed mid-write leaves the previous file intact. Metadata (source, calendar, range, rows,
last sync, content checksum and the history of writes) lives in the Parquet footer, so data and
metadata can never disagree. Every write merges into the series under a conflict policy
(:mod:`aitrader.data.provenance`): nothing overwrites stored bars without being asked.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aitrader.data.provenance import (
    Write,
    check_calendar,
    check_source,
    extend_history,
    history_entry,
    infer_calendar,
    merge,
)
from aitrader.data.schema import COLUMNS, empty_candles, normalise, ns_stamps, validate_candles
from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import DataError, StoreError, UnknownName
from aitrader.names import path_segment

META_KEY = b"aitrader"
FORMAT_VERSION = 2  # 2 added calendar and history; version-1 files read with defaults


@dataclass(frozen=True, order=True)
class DatasetKey:
    """Identifies a stored series: ``exchange:SYMBOL:timeframe`` (symbol may contain ``:``)."""

    exchange: str
    symbol: str
    timeframe: str

    def __post_init__(self) -> None:
        if not self.exchange or not self.symbol:
            raise UnknownName(f"data set key needs an exchange and a symbol, got {self}")
        path_segment(self.exchange, "exchange")  # they become the series' path in the store
        path_segment(self.symbol, "symbol", separators=True)
        timeframe_seconds(self.timeframe)

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"

    @classmethod
    def parse(cls, text: str) -> DatasetKey:
        """Parse ``exchange:SYMBOL:timeframe``; the symbol is what lies between the outer colons."""
        head, sep, timeframe = text.rpartition(":")
        exchange, sep2, symbol = head.partition(":")
        if not sep or not sep2:
            raise UnknownName(
                f"bad data set name {text!r}: expected EXCHANGE:SYMBOL:TIMEFRAME "
                "(e.g. binance:BTC/USDT:1h) or sample:NAME"
            )
        return cls(exchange.lower(), symbol, timeframe)

    def relpath(self) -> Path:
        return (
            Path(quote(self.exchange, safe=""))
            / quote(self.symbol, safe="")
            / (f"{self.timeframe}.parquet")
        )


@dataclass(frozen=True)
class DatasetMeta:
    """What the store knows about one series without reading its rows."""

    exchange: str
    symbol: str
    timeframe: str
    source: str
    rows: int
    first: str | None
    last: str | None
    last_sync: str
    checksum: str
    format_version: int = FORMAT_VERSION
    calendar: str = "crypto"
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> DatasetKey:
        return DatasetKey(self.exchange, self.symbol, self.timeframe)


def checksum(df: pd.DataFrame) -> str:
    """SHA-256 over the index and OHLCV values: independent of file encoding."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(ns_stamps(df.index)).tobytes())
    for column in COLUMNS:
        digest.update(np.ascontiguousarray(df[column].to_numpy(dtype="float64")).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class WriteResult:
    """A write's outcome: the series' new metadata, rows that were new, rows that differed."""

    meta: DatasetMeta
    added: int
    conflicts: int


class Store:
    """Parquet files under ``root/candles``; every method takes a DatasetKey."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self.candles_dir = self.root / "candles"

    def path(self, key: DatasetKey) -> Path:
        return self.candles_dir / key.relpath()

    def exists(self, key: DatasetKey) -> bool:
        return self.path(key).is_file()

    def metadata(self, key: DatasetKey) -> DatasetMeta:
        return self._read_meta(self._existing(key))

    def read(
        self, key: DatasetKey, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Candles of a stored series, optionally limited to ``start <= t < end``."""
        path = self._existing(key)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{path}: unreadable Parquet file ({exc})") from exc
        try:
            index = pd.DatetimeIndex(table.column("timestamp").to_pandas(), name="timestamp")
            df = pd.DataFrame({c: table.column(c).to_numpy() for c in COLUMNS}, index=index)
        except KeyError as exc:
            raise StoreError(f"{path}: missing column {exc}") from exc
        df = normalise(df)
        if start is not None:
            df = df[df.index >= pd.Timestamp(start)]
        if end is not None:
            df = df[df.index < pd.Timestamp(end)]
        return df

    def write(self, key: DatasetKey, df: pd.DataFrame, how: Write | str) -> WriteResult:
        """Merge ``df`` into a series under ``how``'s conflict and source rules.

        Raises ConflictError when stored bars differ and ``how.on_conflict`` is ``fail``, and
        DataError for rows from another source; on any error the stored file stays as it was.
        """
        how = Write(how) if isinstance(how, str) else how
        check_calendar(how.calendar)
        validate_candles(df, f"{key} (new rows)")
        new = normalise(df)
        with self._lock(key):
            meta = self.metadata(key) if self.exists(key) else None
            old = self.read(key) if meta is not None else empty_candles()
            if meta is not None and meta.rows:
                check_source(str(key), meta.source, how)
                _check_same_calendar(key, meta, how)
            merged, conflicts = merge(old, new, str(key), how)
            added = len(merged) - len(old)
            entry = history_entry(how, len(new), added, conflicts)
            meta = self._write_unlocked(key, merged, how, meta, entry)
            return WriteResult(meta, added, conflicts)

    def delete(self, key: DatasetKey) -> None:
        with self._lock(key):
            self._existing(key).unlink()

    def list(self) -> list[DatasetMeta]:
        """Metadata of every stored series, sorted by key."""
        if not self.candles_dir.is_dir():
            return []
        metas = [
            self._read_meta(p)
            for p in sorted(self.candles_dir.glob("*/*/*.parquet"))
            if not p.name.startswith(".")
        ]
        return sorted(metas, key=lambda m: m.key)

    def _existing(self, key: DatasetKey) -> Path:
        path = self.path(key)
        if not path.is_file():
            known = ", ".join(str(m.key) for m in self.list()) or "none"
            raise UnknownName(f"no stored data set {key} (stored: {known})")
        return path

    def _read_meta(self, path: Path) -> DatasetMeta:
        try:
            raw = pq.read_schema(path).metadata or {}
            fields = json.loads(raw[META_KEY])
            if "calendar" not in fields:  # version 1: the calendar followed the exchange name
                fields["calendar"] = "equity" if fields.get("exchange") == "yahoo" else "crypto"
            return DatasetMeta(**fields)
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
            raise StoreError(f"{path}: not an aitrader data file ({exc})") from exc

    def _write_unlocked(
        self,
        key: DatasetKey,
        df: pd.DataFrame,
        how: Write,
        previous: DatasetMeta | None,
        entry: dict[str, Any],
    ) -> DatasetMeta:
        validate_candles(df, str(key))
        df = normalise(df)
        digest = checksum(df)
        old_history = previous.history if previous else []
        history = extend_history(old_history, {**entry, "rows": len(df), "checksum": digest})
        meta = DatasetMeta(
            exchange=key.exchange,
            symbol=key.symbol,
            timeframe=key.timeframe,
            source=previous.source if previous and previous.rows else how.source,
            rows=len(df),
            first=df.index[0].isoformat() if len(df) else None,
            last=df.index[-1].isoformat() if len(df) else None,
            last_sync=datetime.now(UTC).isoformat(timespec="seconds"),
            checksum=digest,
            calendar=how.calendar or (previous.calendar if previous else infer_calendar(df.index)),
            history=history,
        )
        table = pa.Table.from_pandas(df.reset_index(), preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), META_KEY: json.dumps(asdict(meta)).encode()}
        )
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return meta

    @contextmanager
    def _lock(self, key: DatasetKey) -> Iterator[None]:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        with open(path.with_name(f".{path.name}.lock"), "w") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def query(self, sql: str, unsafe: bool = False) -> pd.DataFrame:
        """Run DuckDB SQL over the store: view ``candles`` holds every series with its key.

        Read-only unless ``unsafe``: only SELECT / EXPLAIN statements run, and DuckDB may open
        no file but the store's own series (no other file, no writes, no extension install,
        no network)."""
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            parts, paths = [], []
            for meta in self.list():
                path = str(self.path(meta.key)).replace("'", "''")
                paths.append(path)
                parts.append(
                    f"SELECT '{_sql(meta.exchange)}' AS exchange, '{_sql(meta.symbol)}' AS symbol, "
                    f"'{_sql(meta.timeframe)}' AS timeframe, timestamp::TIMESTAMPTZ AS timestamp, "
                    f"{', '.join(COLUMNS)} FROM read_parquet('{path}')"
                )
            body = " UNION ALL ".join(parts) or (
                "SELECT NULL::VARCHAR AS exchange, NULL::VARCHAR AS symbol, "
                "NULL::VARCHAR AS timeframe, NULL::TIMESTAMPTZ AS timestamp, "
                + ", ".join(f"NULL::DOUBLE AS {c}" for c in COLUMNS)
                + " WHERE FALSE"
            )
            con.execute(f"CREATE VIEW candles AS {body}")
            if not unsafe:
                _read_only(con, paths, sql)
            try:
                return con.execute(sql).df()
            except duckdb.Error as exc:
                raise DataError(f"query failed: {exc}") from exc
        finally:
            con.close()


def _check_same_calendar(key: DatasetKey, meta: DatasetMeta, how: Write) -> None:
    if how.calendar is not None and how.calendar != meta.calendar:
        raise DataError(
            f"{key} is stored with the {meta.calendar} calendar, not {how.calendar}; "
            f"delete it first (aitrader data delete {key}) to store it with another calendar"
        )


READ_ONLY = ("SELECT", "EXPLAIN")
"""Statement kinds ``query`` runs without ``unsafe``."""


def _read_only(con: Any, paths: list[str], sql: str) -> None:
    """Refuse statements other than SELECT / EXPLAIN, then lock DuckDB out of every file but
    ``paths`` (the store's series) for the rest of the connection."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise DataError(f"query failed: {exc}") from exc
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY:
            raise DataError(
                f"data query is read-only: a {kind} statement is not run (only SELECT and "
                "EXPLAIN over the store); --unsafe lifts this"
            )
    allowed = ", ".join(f"'{p}'" for p in paths)
    con.execute(f"SET allowed_paths = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _sql(text: str) -> str:
    return text.replace("'", "''")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files left by writers that were killed (their PID is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name.split(".")[-3]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
