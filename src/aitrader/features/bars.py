"""OHLCV as contiguous float64 arrays plus bar open times: the input of every feature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.data.schema import validate_candles


@dataclass(frozen=True)
class Bars:
    """Columns of a candle frame as numpy arrays; ``ts`` is the bar open time in UTC nanoseconds."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def head(self, n: int) -> Bars:
        """The first ``n`` bars (what a caller living at bar ``n - 1`` would know)."""
        return Bars(
            self.open[:n].copy(),
            self.high[:n].copy(),
            self.low[:n].copy(),
            self.close[:n].copy(),
            self.volume[:n].copy(),
            self.ts[:n].copy(),
        )


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(df[name].to_numpy(dtype="float64"))


def bars_from_candles(candles: pd.DataFrame, source: str = "candles") -> Bars:
    """Validate a candle frame (schema of ``aitrader.data.schema``) and unpack it into arrays."""
    validate_candles(candles, source)
    index = pd.DatetimeIndex(candles.index).tz_convert("UTC").as_unit("ns")
    return Bars(
        _column(candles, "open"),
        _column(candles, "high"),
        _column(candles, "low"),
        _column(candles, "close"),
        _column(candles, "volume"),
        np.ascontiguousarray(index.asi8),
    )


def resample_bars(bars: Bars, seconds: int, origin_ns: int = 0) -> Bars:
    """Aggregate bars into buckets of ``seconds`` aligned on ``origin_ns`` (UTC epoch by default).

    Each output bar carries its bucket's open time; open/close are the first/last constituent
    values, high/low the extremes and volume the sum. The last bucket may be incomplete: callers
    must only expose buckets that have closed (see :mod:`aitrader.features.mtf`).
    """
    step = np.int64(seconds) * np.int64(1_000_000_000)
    bucket = (bars.ts - np.int64(origin_ns)) // step
    if len(bars) == 0:
        return bars
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bars)] - 1
    return Bars(
        bars.open[starts].copy(),
        np.maximum.reduceat(bars.high, starts),
        np.minimum.reduceat(bars.low, starts),
        bars.close[ends].copy(),
        np.add.reduceat(bars.volume, starts),
        bucket[starts] * step + np.int64(origin_ns),
    )
