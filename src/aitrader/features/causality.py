"""The no-look-ahead harness: a feature is causal when truncating history never changes it.

Models get the same test (:func:`check_prediction_causality`): a fitted model's prediction at
row ``t`` must not change when the rows after ``t`` are cut off or replaced by other values
(a sequence model's window, a filtered regime state); one that decodes the whole sequence fails.

For each cut point ``c`` the feature is recomputed on bars ``0..c`` only; every value at and
before ``c`` must equal the value computed on the full series (NaN equal to NaN, bit for bit). A
feature that peeks at bar ``t + 1`` to produce bar ``t`` fails at the first cut it straddles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.features.bars import Bars
from aitrader.features.featureset import compute_spec
from aitrader.features.spec import FeatureSpec


@dataclass(frozen=True)
class Violation:
    """Where a truncated recomputation disagreed with the full one."""

    column: str
    cut: int
    row: int
    full: float
    truncated: float

    def __str__(self) -> str:
        return (
            f"{self.column}: row {self.row} is {self.full!r} on the full series but "
            f"{self.truncated!r} when the series ends at row {self.cut}"
        )


def random_cuts(n: int, count: int, min_rows: int, seed: int = 0) -> list[int]:
    """``count`` distinct cut rows drawn uniformly from ``[min_rows, n - 2]`` (sorted)."""
    rng = np.random.default_rng(seed)
    low, high = min(max(min_rows, 1), n - 2), n - 1
    return sorted({int(c) for c in rng.integers(low, high, size=count)})


def check_causality(
    bars: Bars,
    spec: FeatureSpec,
    cuts: Sequence[int],
    base_seconds: int | None = None,
) -> list[Violation]:
    """Compare the full computation with one truncated at each cut; return the violations
    (first differing row per column and cut; empty when the feature is causal).
    """
    full = compute_spec(bars, spec, base_seconds)
    found: list[Violation] = []
    for cut in cuts:
        part = compute_spec(bars.head(cut + 1), spec, base_seconds)
        for column, whole, head in zip(full.columns, full.values, part.values, strict=True):
            expected = whole[: cut + 1]
            same = (expected == head) | (np.isnan(expected) & np.isnan(head))
            if head.shape != expected.shape:
                found.append(Violation(column, cut, -1, float("nan"), float("nan")))
            elif not same.all():
                row = int(np.flatnonzero(~same)[0])
                found.append(Violation(column, cut, row, float(expected[row]), float(head[row])))
    return found


def check_prediction_causality(
    predict: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    cuts: Sequence[int],
    seed: int = 0,
) -> list[Violation]:
    """Predict ``X`` whole, then for each cut ``c`` on rows ``0..c`` alone and on ``X`` with
    the rows after ``c`` replaced by shuffled other rows; the predictions of rows ``0..c`` must
    be equal bit for bit (the violation's column names the probability column and the check)."""
    full = np.asarray(predict(X), dtype=np.float64).reshape(len(X), -1)
    rng = np.random.default_rng(seed)
    found: list[Violation] = []
    for cut in cuts:
        altered = X.copy()
        future = altered.iloc[cut + 1 :]
        altered.iloc[cut + 1 :] = future.to_numpy()[rng.permutation(len(future))] * -1.5
        checks = (("truncated", X.iloc[: cut + 1]), ("future altered", altered))
        for what, data in checks:
            got = np.asarray(predict(data), dtype=np.float64).reshape(len(data), -1)[: cut + 1]
            same = (got == full[: cut + 1]) | (np.isnan(got) & np.isnan(full[: cut + 1]))
            if not same.all():
                row, col = (int(v[0]) for v in np.nonzero(~same))
                name = f"probability {col} ({what})"
                found.append(Violation(name, cut, row, float(full[row, col]), float(got[row, col])))
    return found
