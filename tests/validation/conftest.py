"""Factories for validation tests: synthetic candles with or without a predictable component."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

CandleFactory = Callable[..., pd.DataFrame]


def synthetic_candles(n: int, seed: int = 0, phi: float = 0.0, vol: float = 0.006) -> pd.DataFrame:
    """Hourly candles of a geometric random walk; ``phi`` > 0 adds AR(1) momentum to returns."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, vol, n)
    returns = np.empty(n)
    returns[0] = eps[0]
    for i in range(1, n):
        returns[i] = phi * returns[i - 1] + eps[i]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 3, n)))
    index = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    volume = rng.uniform(1.0, 10.0, n)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


@pytest.fixture()
def make_candles() -> CandleFactory:
    return synthetic_candles
