"""Multi-timeframe features: compute on higher-timeframe bars, expose only closed ones.

With bar-open-time stamps, a higher-timeframe bar opening at ``T`` with length ``H`` closes at
``T + H``; a base bar opening at ``t`` with length ``b`` closes at ``t + b``. The base bar sees the
higher-timeframe bar only when ``t + b >= T + H``: e.g. the 1h bar opening at 03:00 (closing at
04:00) is the first to see the 4h bar that opened at 00:00. By then every base bar inside that
4h bar has closed, so truncating the series never changes a value that was visible.
"""

from __future__ import annotations

import numpy as np

from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import ConfigError
from aitrader.features.bars import Bars, resample_bars

_NS = 1_000_000_000
_MONDAY_NS = 4 * 86_400 * _NS  # 1970-01-05, the first Monday after the epoch


def infer_timeframe_seconds(ts: np.ndarray) -> int:
    """The most common spacing of bar open times, in seconds (the data's timeframe)."""
    if ts.shape[0] < 2:
        raise ConfigError("cannot infer the data's timeframe from fewer than two bars; pass it")
    steps = np.diff(ts)
    values, counts = np.unique(steps[steps > 0], return_counts=True)
    return int(values[np.argmax(counts)] // _NS)


def higher_seconds(timeframe: str, base_seconds: int) -> int:
    """Seconds per bar of a higher timeframe given as ``4h`` or as ``x4`` (four base bars).

    Raises ConfigError unless it is a whole multiple (≥ 2) of the base timeframe.
    """
    if timeframe.startswith("x"):
        return int(timeframe[1:]) * base_seconds
    seconds = timeframe_seconds(timeframe)
    if seconds <= base_seconds or seconds % base_seconds:
        raise ConfigError(
            f"timeframe {timeframe!r} must be a whole multiple (at least 2x) of the data's "
            f"timeframe ({base_seconds} s)"
        )
    return seconds


def origin_ns(seconds: int) -> int:
    """Bucket alignment: the UTC epoch, or the first Monday for whole weeks."""
    return _MONDAY_NS if seconds % (7 * 86_400) == 0 else 0


def visible_index(
    base_ts: np.ndarray, base_seconds: int, htf: Bars, htf_seconds: int
) -> np.ndarray:
    """For each base bar, the index of the last higher-timeframe bar that has closed by the base
    bar's close (−1 when none has).
    """
    base_close = base_ts + np.int64(base_seconds) * _NS
    htf_close = htf.ts + np.int64(htf_seconds) * _NS
    return np.searchsorted(htf_close, base_close, side="right").astype(np.int64) - 1


def align(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` with NaN where ``index`` is −1."""
    out = np.full(index.shape[0], np.nan)
    seen = index >= 0
    out[seen] = values[index[seen]]
    return out


def on_higher_timeframe(bars: Bars, base_seconds: int, htf_seconds: int) -> tuple[Bars, np.ndarray]:
    """Resample ``bars`` and return the higher-timeframe bars and each base bar's visible index."""
    htf = resample_bars(bars, htf_seconds, origin_ns(htf_seconds))
    return htf, visible_index(bars.ts, base_seconds, htf, htf_seconds)
