"""ccxt-style timeframe strings (``1m, 5m, 1h, 4h, 1d, 1w``) and their durations."""

from __future__ import annotations

import re

import pandas as pd

from aitrader.errors import ConfigError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")


def timeframe_seconds(timeframe: str) -> int:
    """Length of one bar in seconds; raises ConfigError naming the bad value."""
    match = _PATTERN.match(timeframe.strip()) if isinstance(timeframe, str) else None
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(
            f"unknown timeframe {timeframe!r}: expected a number and a unit "
            "(s, m, h, d, w), e.g. 1m, 15m, 1h, 4h, 1d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """Length of one bar as a pandas Timedelta."""
    return pd.Timedelta(seconds=timeframe_seconds(timeframe))


def bars_per_year(timeframe: str, calendar: str = "crypto") -> float:
    """Bars in a year: 365 days around the clock for crypto, 252 sessions for equities."""
    seconds = timeframe_seconds(timeframe)
    if calendar == "equity":
        return 252.0 * max(1.0, 23400.0 / seconds) if seconds < 86400 else 252.0 * 86400 / seconds
    return 365.0 * 86400.0 / seconds
