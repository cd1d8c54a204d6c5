"""Shared fixtures for the feature tests: a slice of real bundled data."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.features.bars import Bars, bars_from_candles


@pytest.fixture(scope="session")
def btc_1h() -> pd.DataFrame:
    """3,000 real hourly BTC/USD candles (Kraken, 2017)."""
    return load_sample("BTC-USD-1h").iloc[:3000]


@pytest.fixture(scope="session")
def btc_bars(btc_1h: pd.DataFrame) -> Bars:
    return bars_from_candles(btc_1h)
