"""CSV and Parquet import: column mapping, unix s/ms or ISO timestamps, timezones → UTC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aitrader.config import QCConfig
from aitrader.data.provenance import OnConflict, Write, infer_calendar
from aitrader.data.quality import apply_policies, run_qc
from aitrader.data.schema import map_columns, to_candles, validate_candles
from aitrader.data.store import DatasetKey, Store, WriteResult
from aitrader.errors import DataError


@dataclass(frozen=True)
class FileFormat:
    """How to read a candle file: column mapping (our name → file column), timestamps, zone."""

    mapping: Mapping[str, str] | None = None
    timestamp_unit: str = "auto"
    timezone: str = "UTC"
    delimiter: str | None = None


def read_table(path: Path, delimiter: str | None = None) -> pd.DataFrame:
    """Read a CSV (optionally gzip/zip/bz2/xz) or Parquet file as a raw table."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if ".csv" in suffixes or ".txt" in suffixes or ".tsv" in suffixes:
            sep = delimiter or ("\t" if ".tsv" in suffixes else ",")
            return pd.read_csv(path, sep=sep)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be parsed ({_short(exc)})") from exc
    raise DataError(f"{path}: unknown file type; use .csv, .csv.gz, .tsv or .parquet")


def read_candles(path: Path, fmt: FileFormat | None = None) -> pd.DataFrame:
    """Read and strictly validate a candle file; errors name the file, row and field."""
    fmt = fmt or FileFormat()
    raw = read_table(path, fmt.delimiter)
    return to_candles(raw, str(path), fmt.mapping, fmt.timestamp_unit, fmt.timezone)


def read_raw_candles(path: Path, fmt: FileFormat | None = None) -> pd.DataFrame:
    """Read a candle file without ordering/OHLC validation, for the quality checks."""
    fmt = fmt or FileFormat()
    raw = read_table(path, fmt.delimiter)
    return map_columns(raw, str(path), fmt.mapping, fmt.timestamp_unit, fmt.timezone, strict=False)


@dataclass(frozen=True)
class ImportRules:
    """What an import must satisfy and may do: QC policies, conflicts, sources, calendar."""

    qc: QCConfig = field(default_factory=QCConfig)
    on_conflict: OnConflict = OnConflict.FAIL
    allow_other_source: bool = False
    calendar: str = "auto"  # auto: the stored series' calendar, or inferred for a new one


def import_file(
    store: Store,
    path: Path,
    key: DatasetKey,
    fmt: FileFormat | None = None,
    rules: ImportRules | None = None,
) -> WriteResult:
    """Quality-check a file as ``data qc`` does, apply the policies and merge it into the store.

    The timeframe is checked against the bars' spacing, the QC policies decide which rows are
    refused or dropped, and the store's conflict and source rules apply; on any error the store
    is left unchanged.
    """
    rules, fmt = rules or ImportRules(), fmt or FileFormat()
    table = read_table(path, fmt.delimiter)
    raw = map_columns(table, str(path), fmt.mapping, fmt.timestamp_unit, fmt.timezone)
    if raw.empty:
        raise DataError(f"{path}: no rows to import")
    calendar = _calendar(store, key, raw.index, rules.calendar)
    report = run_qc(raw, key.timeframe, rules.qc, str(path), calendar)
    candles = apply_policies(raw, report)
    validate_candles(candles, str(path))
    write = Write(
        source=f"file:{Path(path).resolve()}",
        action="import",
        on_conflict=rules.on_conflict,
        allow_other_source=rules.allow_other_source,
        calendar=None if rules.calendar == "auto" and store.exists(key) else calendar,
    )
    return store.write(key, candles, write)


def _calendar(store: Store, key: DatasetKey, index: pd.Index, given: str) -> str:
    if given != "auto":
        return given
    return store.metadata(key).calendar if store.exists(key) else infer_calendar(index)


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """Parse ``--column ours=theirs`` options into a mapping."""
    allowed = {"timestamp", "open", "high", "low", "close", "volume"}
    mapping: dict[str, str] = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or ours.strip() not in allowed or not theirs.strip():
            raise DataError(
                f"--column {pair!r}: expected FIELD=COLUMN with FIELD one of "
                f"{', '.join(sorted(allowed))}"
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1][:300]
