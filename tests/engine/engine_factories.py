"""Small candle factories for the engine tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def candles(rows: list[tuple[float, float, float, float]], volume: float = 1e9) -> pd.DataFrame:
    """Hourly candles from (open, high, low, close) rows."""
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(rows, index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = volume
    return frame.astype(np.float64)


def targets(n: int, changes: dict[int, float]) -> np.ndarray:
    """NaN (no decision) except the given bar -> target fraction entries."""
    out = np.full(n, np.nan)
    for bar, value in changes.items():
        out[bar] = value
    return out
