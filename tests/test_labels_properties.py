"""Property tests: a label at bar t depends on bars t..t+horizon (and past ATR) only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aitrader.labels.build import (
    Labels,
    binary_labels,
    direction_labels,
    forward_returns,
    triple_barrier,
)

Builder = Callable[[pd.DataFrame, int], Labels]

BUILDERS: dict[str, Builder] = {
    "direction3": lambda c, h: direction_labels(c, h),
    "direction3_zero_band": lambda c, h: direction_labels(c, h, neutral_band=0.0),
    "binary": lambda c, h: binary_labels(c, h),
    "forward_return": lambda c, h: forward_returns(c, h),
    "log_forward_return": lambda c, h: forward_returns(c, h, log=True),
    "triple_barrier_long": lambda c, h: triple_barrier(
        c, take_profit=1.0, stop_loss=0.5, max_bars=h, atr_period=3
    ),
    "triple_barrier_short": lambda c, h: triple_barrier(
        c, take_profit=0.5, stop_loss=1.5, max_bars=h, atr_period=2, side=-1
    ),
}
FIXED_HORIZON = ("direction3", "direction3_zero_band", "binary", "forward_return")
FAST = settings(max_examples=25, deadline=None)


def _floats(n: int, low: float, high: float) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, n, elements=st.floats(low, high, allow_nan=False))


@st.composite
def candles(draw: st.DrawFn, n: int) -> pd.DataFrame:
    """A valid OHLCV path of ``n`` hourly bars (opens may gap from the previous close)."""
    start = draw(st.floats(1.0, 1000.0))
    close = start * np.exp(np.cumsum(draw(_floats(n, -0.03, 0.03))))
    open_ = np.concatenate([[start], close[:-1]]) * np.exp(draw(_floats(n, -0.01, 0.01)))
    high = np.maximum(open_, close) * (1 + draw(_floats(n, 0.0, 0.02)))
    low = np.minimum(open_, close) * (1 - draw(_floats(n, 0.0, 0.02)))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    frame = {"open": open_, "high": high, "low": low, "close": close, "volume": np.ones(n)}
    return pd.DataFrame(frame, index=index)


@st.composite
def two_paths(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Two independent paths on the same index and a horizon."""
    n = draw(st.integers(2, 40))
    return draw(candles(n)), draw(candles(n)), draw(st.integers(1, 6))


def splice(first: pd.DataFrame, second: pd.DataFrame, at: int) -> pd.DataFrame:
    """Rows before ``at`` from ``first``, the rest from ``second`` (still valid candles)."""
    return pd.concat([first.iloc[:at], second.iloc[at:]])


def assert_rows_equal(a: Labels, b: Labels, rows: slice) -> None:
    if isinstance(a.values, pd.DataFrame):
        assert isinstance(b.values, pd.DataFrame)
        pd.testing.assert_frame_equal(a.values.iloc[rows], b.values.iloc[rows])
    else:
        pd.testing.assert_series_equal(a.values.iloc[rows], b.values.iloc[rows])
    pd.testing.assert_series_equal(a.end_times.iloc[rows], b.end_times.iloc[rows])


@pytest.mark.parametrize("kind", list(BUILDERS))
@FAST
@given(paths=two_paths(), data=st.data())
def test_changing_bars_after_t_plus_horizon_leaves_label_at_t(
    kind: str, paths: tuple[pd.DataFrame, pd.DataFrame, int], data: st.DataObject
) -> None:
    first, second, horizon = paths
    at = data.draw(st.integers(1, len(first)), label="altered from")
    base = BUILDERS[kind](first, horizon)
    altered = BUILDERS[kind](splice(first, second, at), horizon)
    assert_rows_equal(base, altered, slice(0, max(at - horizon, 0)))


@pytest.mark.parametrize("kind", list(BUILDERS))
@FAST
@given(paths=two_paths(), data=st.data())
def test_truncated_history_gives_same_labels_then_nan(
    kind: str, paths: tuple[pd.DataFrame, pd.DataFrame, int], data: st.DataObject
) -> None:
    full, _, horizon = paths
    cut = data.draw(st.integers(1, len(full)), label="cut")
    whole = BUILDERS[kind](full, horizon)
    short = BUILDERS[kind](full.iloc[:cut], horizon)
    keep = max(cut - horizon, 0)
    assert_rows_equal(whole, short, slice(0, keep))
    assert short.target.iloc[keep:].isna().all()
    assert short.end_times.iloc[keep:].isna().all()


@pytest.mark.parametrize("kind", FIXED_HORIZON)
@FAST
@given(paths=two_paths(), data=st.data())
def test_fixed_horizon_label_ignores_bars_before_t(
    kind: str, paths: tuple[pd.DataFrame, pd.DataFrame, int], data: st.DataObject
) -> None:
    first, second, horizon = paths
    at = data.draw(st.integers(0, len(first) - 1), label="altered before")
    base = BUILDERS[kind](first, horizon)
    altered = BUILDERS[kind](splice(second, first, at), horizon)
    assert_rows_equal(base, altered, slice(at, None))


@pytest.mark.parametrize("side", [1, -1])
@FAST
@given(paths=two_paths(), data=st.data())
def test_triple_barrier_with_given_atr_depends_only_on_t_to_t_plus_horizon(
    side: int, paths: tuple[pd.DataFrame, pd.DataFrame, int], data: st.DataObject
) -> None:
    first, second, horizon = paths
    n = len(first)
    atr = pd.Series(data.draw(_floats(n, 0.0, 5.0), label="atr"), index=first.index)
    start = data.draw(st.integers(0, n - 1), label="window start")
    stop = data.draw(st.integers(start + 1, n), label="window stop")

    def build(frame: pd.DataFrame) -> Labels:
        return triple_barrier(
            frame, take_profit=1.0, stop_loss=1.0, max_bars=horizon, atr=atr, side=side
        )

    window = slice(start, max(stop - horizon, start))
    mixed = splice(splice(second, first, start), second, stop)  # only bars start..stop-1 kept
    assert_rows_equal(build(first), build(mixed), window)


@pytest.mark.parametrize("side", [1, -1])
@FAST
@given(paths=two_paths(), data=st.data())
def test_triple_barrier_end_time_is_the_last_bar_used(
    side: int, paths: tuple[pd.DataFrame, pd.DataFrame, int], data: st.DataObject
) -> None:
    first, second, horizon = paths
    atr = (first["high"] - first["low"]).rename("atr")

    def build(frame: pd.DataFrame) -> Labels:
        return triple_barrier(frame, max_bars=horizon, atr=atr, side=side, take_profit=0.7)

    base = build(first)
    rows = np.flatnonzero(base.mask.to_numpy())
    if rows.size == 0:
        return
    row = int(data.draw(st.sampled_from(rows.tolist()), label="row"))
    end = int(first.index.get_loc(base.end_times.iloc[row]))
    assert row < end <= row + horizon
    assert_rows_equal(base, build(splice(first, second, end + 1)), slice(row, row + 1))


@pytest.mark.parametrize("kind", list(BUILDERS))
@FAST
@given(paths=two_paths())
def test_classes_and_nan_tail(kind: str, paths: tuple[pd.DataFrame, pd.DataFrame, int]) -> None:
    frame, _, horizon = paths
    labels = BUILDERS[kind](frame, horizon)
    target = labels.target.dropna()
    assert labels.horizon == horizon
    assert labels.mask.equals(labels.target.notna())
    tail = labels.target.iloc[max(len(frame) - horizon, 0) :]
    assert tail.isna().all()
    if kind.startswith(("direction3", "triple_barrier")):
        assert set(target.unique()) <= {-1.0, 0.0, 1.0}
    elif kind == "binary":
        assert set(target.unique()) <= {0.0, 1.0}
    if kind in FIXED_HORIZON or kind == "log_forward_return":
        assert labels.mask.sum() == max(len(frame) - horizon, 0)
        ends = labels.end_times.dropna()
        positions = frame.index.get_indexer(pd.DatetimeIndex(ends))
        np.testing.assert_array_equal(positions - frame.index.get_indexer(ends.index), horizon)


@pytest.mark.parametrize("side", [1, -1])
@FAST
@given(paths=two_paths())
def test_triple_barrier_outcome_is_consistent(
    side: int, paths: tuple[pd.DataFrame, pd.DataFrame, int]
) -> None:
    frame, _, horizon = paths
    atr = (frame["high"] - frame["low"]).rename("atr")
    values = triple_barrier(
        frame, take_profit=1.5, stop_loss=1.0, max_bars=horizon, atr=atr, side=side
    ).values.dropna(subset=["barrier"])
    entry = frame["close"].loc[values.index]
    width = atr.loc[values.index] / entry
    held = values["bars_held"].astype("int64")
    assert held.between(1, horizon).all()
    assert (held[values["barrier"] == 0] == horizon).all()
    take = values["barrier"] == 1
    np.testing.assert_allclose(values.loc[take, "ret"], 1.5 * width[take], rtol=1e-9, atol=1e-12)
    stop = values["barrier"] == -1
    assert (values.loc[stop, "ret"] <= -1.0 * width[stop] + 1e-12).all()
    vertical = values["barrier"] == 0
    assert (
        values.loc[vertical, "ret"].abs() <= np.maximum(1.5, 1.0) * width[vertical] + 1e-12
    ).all()
