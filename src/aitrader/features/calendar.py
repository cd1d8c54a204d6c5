"""Calendar features from bar open times (UTC), encoded on the unit circle."""

from __future__ import annotations

import numpy as np

_NS_PER_SECOND = 1_000_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def hour_of_day(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin/cos of the UTC time of day of each bar's open (fractional hours). Warm-up: 0."""
    seconds = (np.asarray(ts, dtype=np.int64) // _NS_PER_SECOND) % 86_400
    angle = 2.0 * np.pi * seconds / 86_400.0
    return np.sin(angle), np.cos(angle)


def day_of_week(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin/cos of the UTC weekday (Monday = 0) of each bar's open. Warm-up: 0."""
    days = np.asarray(ts, dtype=np.int64) // (86_400 * _NS_PER_SECOND)
    weekday = (days + _EPOCH_WEEKDAY) % 7
    angle = 2.0 * np.pi * weekday / 7.0
    return np.sin(angle), np.cos(angle)
