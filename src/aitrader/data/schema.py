"""The candle schema (ARCHITECTURE §5) and strict validation naming source, row and field.

Candles are a DataFrame indexed by a tz-aware UTC ``DatetimeIndex`` named ``timestamp`` (bar open
time) with float64 columns ``open, high, low, close, volume``, strictly increasing and unique.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from aitrader.errors import DataError

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def ns_stamps(index: pd.Index) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch, whatever the index's resolution."""
    return np.asarray(pd.DatetimeIndex(index).as_unit("ns").asi8)


def empty_candles() -> pd.DataFrame:
    """A zero-row frame with the candle schema."""
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns")
    return pd.DataFrame({c: np.array([], dtype="float64") for c in COLUMNS}, index=index)


def _row_label(rows: np.ndarray | None, position: int) -> str:
    return f"row {int(rows[position]) if rows is not None else position + 1}"


_UNIT_SCALE = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_EARLIEST, _LATEST = 315_532_800, 4_102_444_800  # 1980-01-01 and 2100-01-01, unix seconds


def parse_timestamps(
    values: pd.Series, source: str, unit: str = "auto", timezone: str = "UTC"
) -> pd.DatetimeIndex:
    """Parse unix seconds / milli- / micro- / nanoseconds or ISO-8601 strings into a UTC index.

    ``unit`` is ``auto`` (told apart by magnitude), ``s``, ``ms``, ``us``, ``ns`` or ``iso``. A
    given unit must put the data between 1980 and 2100, else DataError names the unit that fits.
    Naive ISO strings are taken to be in ``timezone``; strings with offsets keep them. All end UTC.
    """
    if unit not in {"auto", "iso", *_UNIT_SCALE}:
        raise DataError(
            f"{source}: unknown timestamp unit {unit!r} (use auto, s, ms, us, ns or iso)"
        )
    numeric = pd.to_numeric(values, errors="coerce") if unit != "iso" else None
    if numeric is not None and (unit in _UNIT_SCALE or numeric.notna().all()):
        bad = np.flatnonzero(numeric.isna().to_numpy())
        if bad.size:
            raise DataError(
                f"{source}: {_row_label(None, int(bad[0]))}, field 'timestamp': "
                f"{values.iloc[bad[0]]!r} is not a unix time"
            )
        chosen = _unix_unit(numeric, source, unit)
        parsed = pd.to_datetime(numeric.astype("int64"), unit=chosen, utc=True)
    else:
        parsed = _parse_iso(values, source, timezone)
    return pd.DatetimeIndex(parsed, name="timestamp").as_unit("ns")


def _unix_unit(numeric: pd.Series, source: str, unit: str) -> str:
    """The unit that puts every value between 1980 and 2100, checked against a given one."""
    if numeric.empty:
        return "s" if unit == "auto" else unit
    low, high = float(numeric.min()), float(numeric.max())
    fits = [u for u, k in _UNIT_SCALE.items() if _EARLIEST * k <= low and high <= _LATEST * k]
    if unit == "auto" and fits:
        return fits[0]
    if unit in fits:
        return unit
    span = f"values from {low:.0f} to {high:.0f}"
    if fits:
        first = pd.Timestamp(int(low), unit=fits[0], tz="UTC")
        raise DataError(
            f"{source}: --timestamp-unit {unit}: {span} are unix {fits[0]} "
            f"(first bar {first:%Y-%m-%d %H:%M} UTC), not {unit}; use --timestamp-unit "
            f"{fits[0]} or auto"
        )
    raise DataError(
        f"{source}: field 'timestamp': {span} are no unix time between 1980 and 2100 in "
        "seconds, milliseconds, microseconds or nanoseconds; map the right column with "
        "--column timestamp=NAME"
    )


def _parse_iso(values: pd.Series, source: str, timezone: str) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(pd.isna(parsed).to_numpy())
    if bad.size:
        raise DataError(
            f"{source}: {_row_label(None, int(bad[0]))}, field 'timestamp': "
            f"{values.iloc[bad[0]]!r} is not an ISO-8601 time or unix time"
        )
    if timezone.upper() == "UTC":
        return parsed
    naive = ~values.astype("string").str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if not naive.any():
        return parsed
    try:
        local = pd.to_datetime(values[naive], format="ISO8601").dt.tz_localize(
            timezone, ambiguous="raise", nonexistent="raise"
        )
    except Exception as exc:  # zoneinfo and pandas raise several types here
        raise DataError(f"{source}: cannot place naive timestamps in {timezone!r}: {exc}") from exc
    parsed = parsed.copy()
    parsed[naive] = local.dt.tz_convert("UTC")
    return parsed


def to_candles(
    raw: pd.DataFrame,
    source: str,
    mapping: Mapping[str, str] | None = None,
    timestamp_unit: str = "auto",
    timezone: str = "UTC",
) -> pd.DataFrame:
    """Turn a raw table into validated candles. ``mapping`` maps our names to the file's columns."""
    frame = map_columns(raw, source, mapping, timestamp_unit, timezone, strict=True)
    validate_candles(frame, source)
    return frame


def map_columns(
    raw: pd.DataFrame,
    source: str,
    mapping: Mapping[str, str] | None = None,
    timestamp_unit: str = "auto",
    timezone: str = "UTC",
    strict: bool = True,
) -> pd.DataFrame:
    """Pick and parse the timestamp and OHLCV columns without checking order or OHLC sanity.

    With ``strict`` a non-numeric value raises DataError naming row and field; without, it
    becomes NaN for the quality checks to report.
    """
    chosen = _choose_columns(raw, source, mapping or {})
    stamps = raw[chosen["timestamp"]].reset_index(drop=True)
    frame = pd.DataFrame(index=parse_timestamps(stamps, source, timestamp_unit, timezone))
    for name in COLUMNS:
        col = raw[chosen[name]].reset_index(drop=True)
        numeric = pd.to_numeric(col, errors="coerce")
        bad = np.flatnonzero(numeric.isna().to_numpy() & col.notna().to_numpy())
        if strict and bad.size:
            raise DataError(
                f"{source}: {_row_label(None, int(bad[0]))}, field {name!r}: "
                f"{col.iloc[bad[0]]!r} is not a number"
            )
        frame[name] = numeric.to_numpy(dtype="float64")
    return frame


def _choose_columns(raw: pd.DataFrame, source: str, mapping: Mapping[str, str]) -> dict[str, str]:
    lowered = {str(c).strip().lower(): c for c in raw.columns}
    chosen: dict[str, str] = {}
    for name in ("timestamp", *COLUMNS):
        column = mapping.get(name) or name
        found = column if column in raw.columns else lowered.get(str(column).strip().lower())
        if found is None:
            raise DataError(
                f"{source}: missing column {column!r} for field {name!r}; columns present: "
                f"{', '.join(map(str, raw.columns))} (map it with --column {name}=NAME)"
            )
        chosen[name] = found
    return chosen


def validate_candles(df: pd.DataFrame, source: str, rows: np.ndarray | None = None) -> None:
    """Raise DataError at the first violation of the schema, naming source, row and field.

    ``rows`` optionally gives the user-facing row number of each position (default: 1-based).
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    index = df.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise DataError(f"{source}: index must be a tz-aware UTC DatetimeIndex named 'timestamp'")
    for name in COLUMNS:
        values = df[name].to_numpy(dtype="float64")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(
                f"{source}: {_row_label(rows, int(bad[0]))}, field {name!r}: missing/NaN"
            )
        floor = np.flatnonzero(values <= 0) if name != "volume" else np.flatnonzero(values < 0)
        if floor.size:
            what = "must be positive" if name != "volume" else "must not be negative"
            raise DataError(
                f"{source}: {_row_label(rows, int(floor[0]))}, field {name!r}: "
                f"{float(values[floor[0]])} {what}"
            )
    _check_ohlc(df, source, rows)
    _check_order(index, source, rows)


def _check_ohlc(df: pd.DataFrame, source: str, rows: np.ndarray | None) -> None:
    o, h, lo, c = (df[k].to_numpy(dtype="float64") for k in PRICE_COLUMNS)
    high_bad = np.flatnonzero(h < np.maximum.reduce([o, c, lo]))
    if high_bad.size:
        i = int(high_bad[0])
        raise DataError(
            f"{source}: {_row_label(rows, i)}, field 'high': {float(h[i])} is below "
            f"max(open, close, low) = {float(max(o[i], c[i], lo[i]))}"
        )
    low_bad = np.flatnonzero(lo > np.minimum(o, c))
    if low_bad.size:
        i = int(low_bad[0])
        raise DataError(
            f"{source}: {_row_label(rows, i)}, field 'low': {float(lo[i])} is above "
            f"min(open, close) = {float(min(o[i], c[i]))}"
        )


def _check_order(index: pd.DatetimeIndex, source: str, rows: np.ndarray | None) -> None:
    stamps = ns_stamps(index)
    if stamps.size < 2:
        return
    steps = np.diff(stamps)
    dup = np.flatnonzero(steps == 0)
    if dup.size:
        i = int(dup[0]) + 1
        raise DataError(
            f"{source}: {_row_label(rows, i)}, field 'timestamp': duplicate {index[i].isoformat()}"
        )
    back = np.flatnonzero(steps < 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(
            f"{source}: {_row_label(rows, i)}, field 'timestamp': {index[i].isoformat()} is "
            f"earlier than the row before ({index[i - 1].isoformat()}); timestamps must increase"
        )


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce an already-valid frame to the exact schema (column order, dtypes, index unit)."""
    out = df.loc[:, list(COLUMNS)].astype("float64")
    out.index = pd.DatetimeIndex(out.index, name="timestamp").tz_convert("UTC").as_unit("ns")
    return out
