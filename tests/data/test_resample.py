"""Resampling: cross-checked against an independent pandas computation on real 1-minute data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import candles
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.data.resample import resample
from aitrader.data.samples import load_sample
from aitrader.errors import ConfigError

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def pandas_reference(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Plain pandas resample; drops empty bins and the partial first/last bins."""
    out = df.resample(rule, label="left", closed="left", origin="epoch").agg(AGG)
    counts = df["close"].resample(rule, label="left", closed="left", origin="epoch").count()
    out = out[counts > 0]
    step = pd.Timedelta(rule)
    if df.index[0] != out.index[0]:
        out = out.iloc[1:]
    if df.index[-1] + (df.index[1] - df.index[0]) != out.index[-1] + step:
        out = out.iloc[:-1]
    return out


@pytest.mark.parametrize(
    "target,rule", [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("4h", "4h")]
)
def test_matches_pandas_on_bundled_minute_data(target: str, rule: str) -> None:
    df = load_sample("BTC-PERP-1m")
    ours = resample(df, "1m", target)
    theirs = pandas_reference(df, rule)
    pd.testing.assert_frame_equal(ours, theirs, check_freq=False, check_index_type=False)


def test_partial_edge_bars_are_excluded() -> None:
    df = load_sample("BTC-PERP-1m")  # starts 23:01 and ends 05:31
    hourly = resample(df, "1m", "1h")
    assert hourly.index[0] == pd.Timestamp("2022-01-01 00:00", tz="UTC")
    assert hourly.index[-1] == pd.Timestamp("2022-02-01 04:00", tz="UTC")


def test_gaps_make_no_bars_and_weekly_bars_start_monday() -> None:
    df = load_sample("BTC-USD-1h")
    daily = resample(df, "1h", "1d")
    assert len(daily) == len(np.unique(df.index.floor("1D"))) - 0  # every day with data, no more
    weekly = resample(df, "1h", "1w")
    assert set(weekly.index.day_of_week) == {0}
    assert weekly["volume"].sum() <= df["volume"].sum()


def test_interior_gap_bin_dropped_only_on_request() -> None:
    df = candles(24, freq="1h")
    holey = df.drop(df.index[5])
    assert len(resample(holey, "1h", "4h")) == 6
    assert len(resample(holey, "1h", "4h", drop_partial=True)) == 5
    assert len(resample(df.drop(df.index[4:8]), "1h", "4h")) == 5  # an empty bin yields no bar


def test_target_must_be_a_multiple() -> None:
    with pytest.raises(ConfigError, match="whole multiple"):
        resample(candles(10), "1h", "90m")
    with pytest.raises(ConfigError, match="whole multiple"):
        resample(candles(10), "4h", "1h")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=30, max_value=400),
    drop=st.sets(st.integers(min_value=1, max_value=398), max_size=40),
    factor=st.sampled_from([2, 3, 5, 15]),
    offset=st.integers(min_value=0, max_value=14),
)
def test_property_matches_pandas_with_random_gaps(
    n: int, drop: set[int], factor: int, offset: int
) -> None:
    df = candles(n, start=f"2024-01-01 00:{offset:02d}", freq="1min")
    df = df.drop(df.index[[i for i in drop if i < n - 1]])
    ours = resample(df, "1m", f"{factor}m")
    full = df.resample(f"{factor}min", label="left", closed="left", origin="epoch").agg(AGG)
    counts = (
        df["close"].resample(f"{factor}min", label="left", closed="left", origin="epoch").count()
    )
    full = full[counts > 0]
    # every bar we emit equals the pandas bin; we only ever omit the partial first/last bin
    pd.testing.assert_frame_equal(ours, full.loc[ours.index], check_freq=False)
    assert len(full) - len(ours) in (0, 1, 2)
    assert ours.index.is_monotonic_increasing and ours.index.is_unique
