"""Quality checks: true gap counts on the real samples, every defect found, policies applied."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import candles
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.config import Policy, QCConfig
from aitrader.data.quality import apply_policies, run_qc
from aitrader.data.samples import load_sample
from aitrader.errors import DataError


def expected_missing(index: pd.DatetimeIndex, freq: str) -> int:
    """Independent count: the full grid between first and last bar, minus the bars present."""
    grid = pd.date_range(index[0], index[-1], freq=freq)
    return len(grid.difference(index))


@pytest.mark.parametrize("name,missing", [("BTC-USD-1h", 63), ("ETH-USD-1h", 116)])
def test_kraken_gap_counts_are_the_true_ones(name: str, missing: int) -> None:
    df = load_sample(name)
    report = run_qc(df, "1h", dataset=name)
    assert report.missing_bars == missing == expected_missing(df.index, "1h")
    assert report.passed
    longest = report.longest_gap
    assert longest is not None and longest.missing == max(g.missing for g in report.gaps)
    for gap in report.gaps:  # each gap really is absent and bounded by present bars
        assert gap.start not in df.index and gap.end not in df.index
        assert (
            gap.start - pd.Timedelta("1h") in df.index and gap.end + pd.Timedelta("1h") in df.index
        )


def test_clean_minute_data_has_no_gaps() -> None:
    report = run_qc(load_sample("BTC-PERP-1m"), "1m")
    assert report.gaps == [] and report.passed


def test_equity_calendar_ignores_weekends() -> None:
    df = load_sample("SPY-1d")
    crypto = run_qc(df, "1d", calendar="crypto")
    equity = run_qc(df, "1d", calendar="equity")
    assert equity.missing_bars < crypto.missing_bars / 5
    assert any(g.start == pd.Timestamp("2001-09-11", tz="UTC") for g in equity.gaps)


def defective() -> pd.DataFrame:
    df = candles(50)
    raw = df.copy()
    raw.iloc[5, raw.columns.get_loc("high")] = raw["low"].iloc[5] * 0.9  # OHLC contradiction
    raw.iloc[8, raw.columns.get_loc("volume")] = 0.0  # zero volume
    raw.iloc[12, raw.columns.get_loc("low")] = -1.0  # non-positive price
    raw.iloc[30, raw.columns.get_loc("close")] *= 3  # outlier return
    raw = pd.concat([raw.iloc[:20], raw.iloc[[19]], raw.iloc[20:]])  # duplicate of row 20
    raw = raw.drop(raw.index[40:43])  # a 3-bar gap
    order = list(range(len(raw)))
    order[44], order[45] = order[45], order[44]  # out of order
    return raw.iloc[order]


def test_every_defect_is_found() -> None:
    report = run_qc(defective(), "1h", QCConfig(outlier_z=8))
    counts = {c.name: c.count for c in report.checks}
    assert counts["ohlc"] >= 1 and counts["zero_volume"] == 1 and counts["non_positive"] == 1
    assert counts["duplicates"] == 1 and counts["non_increasing"] == 1
    assert counts["outliers"] >= 1
    assert report.missing_bars >= 3
    assert not report.passed
    assert report.check("ohlc").examples[0].startswith("row 6 (2024-01-01T05:00:00")


def test_policies_reject_drop_flag() -> None:
    df = candles(30)
    df = pd.concat([df.iloc[:10], df.iloc[[9]], df.iloc[10:]])  # one duplicate
    df.iloc[3, df.columns.get_loc("volume")] = 0.0
    report = run_qc(df, "1h")
    cleaned = apply_policies(df, report)  # default: duplicates dropped, zero volume flagged
    assert len(cleaned) == 30 and cleaned.index.is_unique
    assert cleaned["volume"].iloc[3] == 0.0
    strict = run_qc(df, "1h", QCConfig(duplicates=Policy.REJECT))
    with pytest.raises(DataError, match=r"duplicates in 1 row\(s\), e\.g\. row 11"):
        apply_policies(df, strict)


def test_gap_policy_cannot_be_drop() -> None:
    with pytest.raises(ValueError, match="gaps cannot be dropped"):
        QCConfig(gaps=Policy.DROP)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=3, max_value=200),
    drop=st.sets(st.integers(min_value=1, max_value=198), max_size=30),
)
def test_gap_count_matches_grid_difference(n: int, drop: set[int]) -> None:
    df = candles(n)
    kept = df.drop(df.index[[i for i in drop if i < n - 1]])
    report = run_qc(kept, "1h")
    assert report.missing_bars == expected_missing(kept.index, "1h")
    assert np.all([g.missing > 0 for g in report.gaps])
