"""CSV and Parquet import: column mapping, unix s/ms or ISO timestamps, timezones → UTC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aitrader.data.schema import map_columns, to_candles
from aitrader.data.store import DatasetKey, DatasetMeta, Store
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


def import_file(
    store: Store, path: Path, key: DatasetKey, fmt: FileFormat | None = None
) -> tuple[DatasetMeta, int]:
    """Validate a file and merge it into the store; on any error the store is left unchanged."""
    candles = read_candles(path, fmt)
    if candles.empty:
        raise DataError(f"{path}: no rows to import")
    return store.append(key, candles, source=f"file:{Path(path).resolve()}")


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
