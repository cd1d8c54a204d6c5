"""Small factories for candle frames and CSV files used by the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def candles(
    n: int = 48, start: str = "2024-01-01", freq: str = "1h", seed: int = 0
) -> pd.DataFrame:
    """A valid random-walk candle frame with consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    grid = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    index = pd.DatetimeIndex(grid.as_unit("ns").asi8, name="timestamp").tz_localize("UTC")
    volume = rng.uniform(1, 10, n)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    """Write candles as CSV with ISO timestamps (the bundled format)."""
    out = df.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index_label="timestamp")
    return path


def momentum_walk(n: int, seed: int, beta: float, vol: float = 0.006) -> pd.DataFrame:
    """Hourly candles whose bar return is ``beta`` × the sum of the last three plus noise: a
    planted, learnable 3-bar momentum (``beta`` 0: a pure random walk)."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, vol, n)
    r = np.zeros(n)
    for i in range(3, n):
        r[i] = beta * (r[i - 1] + r[i - 2] + r[i - 3]) + eps[i]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 3, n)))
    index = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    volume = rng.uniform(1e4, 1e5, n)  # liquid: orders never hit the volume cap
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def regime_walk(
    n: int, seed: int, vols: tuple[float, float] = (0.002, 0.02), block: int = 300
) -> pd.DataFrame:
    """Hourly candles (from 2022-01-01 UTC) whose volatility alternates between ``vols`` every
    ``block`` bars (calm first); each bar's range grows with its volatility."""
    rng = np.random.default_rng(seed)
    sigma = np.asarray(vols)[(np.arange(n) // block) % 2]
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1.0, n) * sigma))
    open_ = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0.0, 1.0, n)) * sigma / 2
    index = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(spread),
            "low": np.minimum(open_, close) * np.exp(-spread),
            "close": close,
            "volume": 1e9,  # deep: market fills are not volume-limited
        },
        index=index,
    )
