"""Leak-free splits: walk-forward (expanding/sliding), purged k-fold with embargo, and CPCV.

Row ``i``'s label window is the half-open interval ``(start_i, end_i]``: its value is known at
the close of the bar stamped ``end_i`` and depends on nothing before ``start_i``'s close. A
training row is **purged** when its window intersects the window of a contiguous test block,
``(start_first, max end]``; the **embargo** also drops the ``embargo`` rows right after each test
block. All indices are positions (0..n-1) into the rows of :class:`LabelWindows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from aitrader.errors import ConfigError, DataError
from aitrader.labels.build import Labels
from aitrader.validation.config import ValidationConfig

Index = np.ndarray
MIN_CALIBRATION = 50


@dataclass(frozen=True)
class LabelWindows:
    """Per-row label windows as int64 nanoseconds, rows in time order."""

    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        if self.start.shape != self.end.shape or self.start.ndim != 1:
            raise DataError("label windows: start and end must be 1-D and of equal length")
        if (np.diff(self.start) <= 0).any():
            raise DataError("label windows: rows must be strictly increasing in time")
        if (self.end <= self.start).any():
            raise DataError("label windows: every end must be after its start")

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def from_labels(cls, labels: Labels, rows: pd.Index | None = None) -> LabelWindows:
        """Windows of ``labels`` on ``rows`` (default: every labelled row)."""
        ends = labels.end_times.dropna() if rows is None else labels.end_times.loc[rows]
        if ends.isna().any():
            raise DataError(f"labels {labels.name!r}: some selected rows have no label")
        start = pd.DatetimeIndex(ends.index).as_unit("ns").asi8
        end = pd.DatetimeIndex(ends.to_numpy()).as_unit("ns").asi8
        return cls(np.ascontiguousarray(start), np.ascontiguousarray(end))


@dataclass(frozen=True)
class Fold:
    """One split: the model trains on ``train``, calibrates on ``calibrate``, is scored on
    ``test`` (sorted positions; ``calibrate`` may be empty)."""

    number: int
    train: Index
    test: Index
    calibrate: Index


def blocks(positions: Index) -> list[tuple[int, int]]:
    """Contiguous runs ``(first, last)`` of sorted positions."""
    if positions.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(positions) != 1)
    firsts = np.r_[positions[0], positions[cuts + 1]]
    lasts = np.r_[positions[cuts], positions[-1]]
    return [(int(a), int(b)) for a, b in zip(firsts, lasts, strict=True)]


def overlapping(windows: LabelWindows, rows: Index, first: int, last: int) -> Index:
    """The ``rows`` whose label windows intersect that of the block ``first..last``."""
    lo = windows.start[first]
    hi = windows.end[first : last + 1].max()
    hit = (windows.start[rows] < hi) & (windows.end[rows] > lo)
    return rows[hit]


def purge(train: Index, test: Index, windows: LabelWindows, embargo: int) -> Index:
    """``train`` without rows overlapping any test block and without each block's embargo."""
    drop: list[Index] = []
    for first, last in blocks(np.sort(test)):
        drop.append(overlapping(windows, train, first, last))
        drop.append(np.arange(last + 1, last + 1 + embargo))
    keep = np.setdiff1d(train, np.concatenate([*drop, test]) if drop else test)
    return keep.astype(np.int64)


def _check_sizes(n: int, needed: int, what: str) -> None:
    if n < needed:
        raise DataError(f"{what}: {n} labelled rows, need at least {needed}")


def carve_calibration(
    train: Index, test: Index, windows: LabelWindows, fraction: float, embargo: int
) -> tuple[Index, Index]:
    """Split purged training rows into (model rows, calibration rows).

    Calibration takes the last ``fraction`` of the rows before the first test row (the rows
    strictly between training and test); when too few precede the test, the last rows overall.
    Model rows overlapping the calibration labels (and its embargo) are purged.
    """
    size = max(MIN_CALIBRATION, round(fraction * train.size))
    before = train[train < test.min()]
    pool = before if before.size >= 2 * size else train
    if pool.size < 2 * size:
        raise DataError(f"training window of {train.size} rows is too small to calibrate")
    calibrate = pool[-size:]
    model = purge(np.setdiff1d(train, calibrate), calibrate, windows, embargo)
    return model, calibrate


def _fold(
    number: int,
    train: Index,
    test: Index,
    windows: LabelWindows,
    config: ValidationConfig,
    embargo: int,
) -> Fold:
    clean = purge(train, test, windows, embargo)
    model, calibrate = carve_calibration(clean, test, windows, config.calibration_fraction, embargo)
    return Fold(number, model, test.astype(np.int64), calibrate)


def walk_forward(windows: LabelWindows, config: ValidationConfig, embargo: int) -> list[Fold]:
    """Expanding or sliding training windows, refit every ``test_size`` rows."""
    n = len(windows)
    _check_sizes(n, config.min_train + 1, "walk-forward")
    length = config.train_size or config.min_train
    folds: list[Fold] = []
    for number, start in enumerate(range(config.min_train, n, config.test_size)):
        test = np.arange(start, min(start + config.test_size, n))
        lo = 0 if config.window == "expanding" else max(0, start - length)
        folds.append(_fold(number, np.arange(lo, start), test, windows, config, embargo))
    if config.max_folds is not None:
        folds = [
            Fold(i, f.train, f.test, f.calibrate) for i, f in enumerate(folds[-config.max_folds :])
        ]
    return folds


def groups(n: int, count: int) -> list[Index]:
    """``count`` contiguous, nearly equal groups of positions ``0..n-1``."""
    return [g.astype(np.int64) for g in np.array_split(np.arange(n), count)]


def purged_kfold(windows: LabelWindows, config: ValidationConfig, embargo: int) -> list[Fold]:
    """K contiguous test folds; training on the rest, purged and embargoed."""
    n = len(windows)
    _check_sizes(n, config.n_splits * 2 * MIN_CALIBRATION, "purged k-fold")
    parts = groups(n, config.n_splits)
    return [
        _fold(k, np.setdiff1d(np.arange(n), test), test, windows, config, embargo)
        for k, test in enumerate(parts)
    ]


@dataclass(frozen=True)
class CPCV:
    """Combinatorial purged CV: one fold per choice of test groups, and the backtest paths.

    ``paths[p][g]`` is the fold whose predictions for group ``g`` make up path ``p``.
    """

    folds: list[Fold]
    groups: list[Index]
    paths: list[list[int]]


def cpcv(windows: LabelWindows, config: ValidationConfig, embargo: int) -> CPCV:
    """All ``C(N, k)`` splits of N groups with k test groups; ``C(N-1, k-1)`` full paths."""
    n, count, k = len(windows), config.cpcv_groups, config.cpcv_test_groups
    _check_sizes(n, count * 2 * MIN_CALIBRATION, "CPCV")
    parts = groups(n, count)
    combos = list(combinations(range(count), k))
    folds = []
    for number, chosen in enumerate(combos):
        test = np.concatenate([parts[g] for g in chosen])
        train = np.setdiff1d(np.arange(n), test)
        folds.append(_fold(number, train, test, windows, config, embargo))
    per_group = [[i for i, c in enumerate(combos) if g in c] for g in range(count)]
    n_paths = len(per_group[0])
    paths = [[per_group[g][p] for g in range(count)] for p in range(n_paths)]
    return CPCV(folds, parts, paths)


def make_folds(windows: LabelWindows, config: ValidationConfig, embargo: int) -> list[Fold]:
    """The folds of ``config.scheme`` (CPCV: every split; see :func:`cpcv` for paths)."""
    if embargo < 0:
        raise ConfigError(f"embargo must be ≥ 0 rows, got {embargo}")
    if config.scheme == "walk_forward":
        return walk_forward(windows, config, embargo)
    if config.scheme == "purged_kfold":
        return purged_kfold(windows, config, embargo)
    return cpcv(windows, config, embargo).folds
