"""The no-look-ahead harness: a feature is causal when truncating history never changes it.

Fitted models get the same test from :mod:`aitrader.validation.leakage` (``model_violations``),
which reports with this module's :class:`Violation`.

For each cut point ``c`` the feature is recomputed on bars ``0..c`` only; every value at and
before ``c`` must equal the value computed on the full series (NaN equal to NaN, bit for bit). A
feature that peeks at bar ``t + 1`` to produce bar ``t`` fails at the first cut it straddles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
    check: str = "truncated"  # or "future altered": the rows after the cut were replaced

    def __str__(self) -> str:
        if self.check == "truncated":
            when = f"when the series ends at row {self.cut}"
        else:
            when = f"when the rows after row {self.cut} are replaced by other values"
        return (
            f"{self.column}: row {self.row} is {self.full!r} on the full series but "
            f"{self.truncated!r} {when}"
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
