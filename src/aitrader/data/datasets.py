"""Resolve a data set name to candles: ``sample:NAME``, a store key, or a CSV/Parquet path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aitrader.data.files import FileFormat, read_candles, read_raw_candles
from aitrader.data.provenance import infer_calendar
from aitrader.data.samples import PREFIX, get_sample, load_sample, sample_namespace
from aitrader.data.schema import ns_stamps
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import DataError, UnknownName

_KNOWN_STEPS = {60: "1m", 300: "5m", 900: "15m", 1800: "30m", 3600: "1h", 14400: "4h", 86400: "1d"}


@dataclass(frozen=True)
class Dataset:
    """Candles plus what they are: name, symbol, timeframe and trading calendar."""

    name: str
    exchange: str
    symbol: str
    timeframe: str
    calendar: str
    candles: pd.DataFrame


def load_dataset(
    ref: str,
    store: Store,
    timeframe: str | None = None,
    fmt: FileFormat | None = None,
    raw: bool = False,
) -> Dataset:
    """Load by name. ``raw`` reads files without validation (for quality checks of bad files)."""
    if ref.startswith(PREFIX):
        sample = get_sample(ref)
        return Dataset(
            ref,
            sample_namespace(sample),
            sample.symbol,
            sample.timeframe,
            sample.calendar,
            load_sample(ref),
        )
    path = Path(ref).expanduser()
    if path.suffix and path.exists():
        candles = read_raw_candles(path, fmt) if raw else read_candles(path, fmt)
        tf = timeframe or infer_timeframe(candles.index, str(path))
        return Dataset(str(path), "file", path.stem, tf, infer_calendar(candles.index), candles)
    try:
        key = DatasetKey.parse(ref)
    except DataError:
        raise UnknownName(
            f"unknown data set {ref!r}: use sample:NAME (see `aitrader data samples`), "
            "EXCHANGE:SYMBOL:TIMEFRAME (see `aitrader data list`) or a path to a CSV/Parquet file"
        ) from None
    calendar = store.metadata(key).calendar
    return Dataset(str(key), key.exchange, key.symbol, key.timeframe, calendar, store.read(key))


def infer_timeframe(index: pd.DatetimeIndex, source: str) -> str:
    """The most common bar spacing, as a timeframe string."""
    steps = np.diff(np.unique(ns_stamps(index))) // 1_000_000_000
    if steps.size == 0:
        raise DataError(
            f"{source}: need at least two bars to infer the timeframe (pass --timeframe)"
        )
    values, counts = np.unique(steps, return_counts=True)
    seconds = int(values[np.argmax(counts)])
    if seconds in _KNOWN_STEPS:
        return _KNOWN_STEPS[seconds]
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
