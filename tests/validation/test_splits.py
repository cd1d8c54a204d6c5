"""Splitters: exact purge/embargo indices, walk-forward geometry, k-fold, CPCV, properties."""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.errors import DataError
from aitrader.labels.build import direction_labels
from aitrader.validation.config import ValidationConfig
from aitrader.validation.splits import (
    Fold,
    LabelWindows,
    blocks,
    cpcv,
    make_folds,
    purge,
    purged_kfold,
    walk_forward,
)

NS_HOUR = 3_600_000_000_000
Factory = Callable[..., pd.DataFrame]


def windows_of(n: int, horizons: np.ndarray | int) -> LabelWindows:
    """Hourly rows whose label ends ``horizons`` bars later."""
    start = np.arange(n, dtype=np.int64) * NS_HOUR
    return LabelWindows(start, start + np.asarray(horizons, dtype=np.int64) * NS_HOUR)


def test_windows_come_from_label_end_times(make_candles: Factory) -> None:
    labels = direction_labels(make_candles(50), horizon=3)
    windows = LabelWindows.from_labels(labels)
    assert len(windows) == 47
    assert np.all(windows.end - windows.start == 3 * NS_HOUR)


def test_purge_removes_exactly_overlapping_rows_and_embargo(make_candles: Factory) -> None:
    labels = direction_labels(make_candles(120), horizon=3)
    windows = LabelWindows.from_labels(labels)
    train, test = np.setdiff1d(np.arange(100), np.arange(40, 50)), np.arange(40, 50)
    kept = purge(train, test, windows, embargo=4)
    removed = np.setdiff1d(train, kept)
    # windows (t, t+3]: rows 38, 39 end inside the test window, rows 50, 51 start inside it;
    # the embargo drops rows 50..53 after the block.
    assert removed.tolist() == [38, 39, 50, 51, 52, 53]


def test_purge_without_embargo_keeps_rows_whose_labels_are_known(make_candles: Factory) -> None:
    windows = LabelWindows.from_labels(direction_labels(make_candles(60), horizon=1))
    kept = purge(np.arange(20), np.arange(20, 30), windows, embargo=0)
    assert kept.tolist() == list(range(20))  # row 19's label is known at row 20's decision


def test_variable_windows_purge_long_labels() -> None:
    horizons = np.full(60, 2)
    horizons[10] = 25  # a triple-barrier label that ran long, into the test block
    windows = windows_of(60, horizons)
    kept = purge(np.arange(30), np.arange(30, 40), windows, embargo=0)
    assert np.setdiff1d(np.arange(30), kept).tolist() == [10, 29]


def test_walk_forward_fold_geometry() -> None:
    windows = windows_of(1000, 5)
    config = ValidationConfig(min_train=400, test_size=200, calibration_fraction=0.25)
    folds = walk_forward(windows, config, embargo=5)
    assert [f.test[0] for f in folds] == [400, 600, 800]
    first = folds[0]
    # 4 rows before the test block are purged; calibration is the last quarter of what is left
    assert first.calibrate.tolist() == list(range(396 - 99, 396))
    assert first.train.tolist() == list(range(0, 297 - 4))
    assert folds[-1].test.tolist() == list(range(800, 1000))


def test_sliding_window_has_fixed_length() -> None:
    windows = windows_of(1000, 1)
    config = ValidationConfig(window="sliding", min_train=300, test_size=100)
    for fold in walk_forward(windows, config, embargo=1):
        assert fold.train.size + fold.calibrate.size == 300
        assert fold.calibrate[-1] == fold.test[0] - 1


def test_max_folds_keeps_the_last() -> None:
    windows = windows_of(1000, 1)
    config = ValidationConfig(min_train=300, test_size=100, max_folds=2)
    folds = walk_forward(windows, config, embargo=1)
    assert [f.number for f in folds] == [0, 1]
    assert folds[-1].test[-1] == 999


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="walk-forward: 100 labelled rows"):
        walk_forward(windows_of(100, 1), ValidationConfig(min_train=300), embargo=1)


def test_cpcv_paths_cover_every_group_once() -> None:
    windows = windows_of(1200, 3)
    config = ValidationConfig(scheme="cpcv", cpcv_groups=6, cpcv_test_groups=2)
    split = cpcv(windows, config, embargo=3)
    assert len(split.folds) == comb(6, 2)
    assert len(split.paths) == comb(5, 1)
    for path in split.paths:
        for group, number in enumerate(path):
            assert np.isin(split.groups[group], split.folds[number].test).all()
    used = sorted(n for path in split.paths for n in path)
    assert used == sorted(list(range(15)) * 2)


def _assert_clean(windows: LabelWindows, fold: Fold, embargo: int) -> None:
    train, test, cal = fold.train, fold.test, fold.calibrate
    for part in (train, test, cal):
        assert np.all(np.diff(part) > 0)  # order preserved, no duplicates
    assert not np.intersect1d(train, test).size and not np.intersect1d(cal, test).size
    assert not np.intersect1d(train, cal).size
    for first, last in blocks(test):
        lo, hi = windows.start[first], windows.end[first : last + 1].max()
        for side in (train, cal):
            assert not np.any((windows.start[side] < hi) & (windows.end[side] > lo))
            assert not np.intersect1d(side, np.arange(last + 1, last + 1 + embargo)).size
    for first, last in blocks(cal):
        lo, hi = windows.start[first], windows.end[first : last + 1].max()
        assert not np.any((windows.start[train] < hi) & (windows.end[train] > lo))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(400, 1500),
    horizon=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    test_size=st.integers(20, 300),
    embargo=st.integers(0, 15),
    sliding=st.booleans(),
)
def test_walk_forward_properties(
    n: int, horizon: int, seed: int, test_size: int, embargo: int, sliding: bool
) -> None:
    horizons = np.random.default_rng(seed).integers(1, horizon + 1, n)
    windows = windows_of(n, horizons)
    config = ValidationConfig(
        min_train=250, test_size=test_size, window="sliding" if sliding else "expanding"
    )
    folds = walk_forward(windows, config, embargo)
    tested = np.concatenate([f.test for f in folds])
    assert tested.tolist() == list(range(250, n))  # every test row exactly once, in order
    for fold in folds:
        _assert_clean(windows, fold, embargo)
        assert fold.train.max() < fold.calibrate.min() <= fold.calibrate.max() < fold.test.min()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(600, 1500),
    horizon=st.integers(1, 12),
    splits=st.integers(2, 5),
    embargo=st.integers(0, 15),
    seed=st.integers(0, 10_000),
)
def test_purged_kfold_properties(
    n: int, horizon: int, splits: int, embargo: int, seed: int
) -> None:
    horizons = np.random.default_rng(seed).integers(1, horizon + 1, n)
    windows = windows_of(n, horizons)
    folds = purged_kfold(windows, ValidationConfig(n_splits=splits), embargo)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(n))
    for fold in folds:
        _assert_clean(windows, fold, embargo)


@settings(max_examples=10, deadline=None)
@given(groups=st.integers(3, 7), k=st.integers(1, 3), embargo=st.integers(0, 10))
def test_cpcv_properties(groups: int, k: int, embargo: int) -> None:
    if k >= groups:
        k = groups - 1
    windows = windows_of(1500, 4)
    config = ValidationConfig(scheme="cpcv", cpcv_groups=groups, cpcv_test_groups=k)
    for fold in make_folds(windows, config, embargo):
        _assert_clean(windows, fold, embargo)


def test_windows_reject_unordered_rows() -> None:
    start = pd.DatetimeIndex(["2024-01-02", "2024-01-01"], tz="UTC").asi8
    with pytest.raises(DataError, match="strictly increasing"):
        LabelWindows(start, start + NS_HOUR)
