"""Resampling candles to a coarser timeframe with bar-open labels.

Bins are aligned to 1970-01-05 00:00 UTC (a Monday), so 4h bars start at 00/04/08..., daily bars
at midnight UTC and weekly bars on Monday. A bin holds open=first, high=max, low=min,
close=last, volume=sum of the finer bars inside it. Empty bins (gaps) produce no bar; a leading or
trailing bin that the data only partly covers is excluded, so no bar pretends to be complete.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aitrader.data.schema import COLUMNS, empty_candles, ns_stamps
from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import ConfigError

NS = 1_000_000_000
ORIGIN_NS = int(pd.Timestamp("1970-01-05", tz="UTC").value)


def resample(
    df: pd.DataFrame, source: str, target: str, drop_partial: bool = False
) -> pd.DataFrame:
    """Aggregate ``df`` (``source`` timeframe) into ``target`` bars.

    ``drop_partial`` also drops interior bins with missing finer bars (default: keep them; a
    missing minute on an exchange usually means no trades, not lost data).
    """
    src_ns, dst_ns = timeframe_seconds(source) * NS, timeframe_seconds(target) * NS
    if dst_ns < src_ns or dst_ns % src_ns:
        raise ConfigError(
            f"cannot resample {source} to {target}: "
            "the target must be a whole multiple of the source"
        )
    if df.empty:
        return empty_candles()
    stamps = ns_stamps(df.index)
    bins = (stamps - ORIGIN_NS) // dst_ns
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    counts = np.diff(np.r_[starts, stamps.size])
    ends = np.r_[starts[1:], stamps.size] - 1
    out = _aggregate(df, starts, ends)
    keep = np.ones(starts.size, dtype=bool)
    per_bin = dst_ns // src_ns
    bin_open = bins[starts] * dst_ns + ORIGIN_NS
    keep[0] &= stamps[0] == bin_open[0]
    keep[-1] &= stamps[-1] + src_ns == bin_open[-1] + dst_ns
    if drop_partial:
        keep &= counts == per_bin
    index = pd.DatetimeIndex(pd.to_datetime(bin_open, utc=True), name="timestamp").as_unit("ns")
    return pd.DataFrame(out, index=index).iloc[keep]


def _aggregate(df: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {c: df[c].to_numpy(dtype="float64") for c in COLUMNS}
    return {
        "open": arrays["open"][starts],
        "high": np.maximum.reduceat(arrays["high"], starts),
        "low": np.minimum.reduceat(arrays["low"], starts),
        "close": arrays["close"][ends],
        "volume": np.add.reduceat(arrays["volume"], starts),
    }
