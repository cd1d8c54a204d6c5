"""Feature sets → feature matrices: ``build_features(candles, spec) -> FeatureMatrix``.

Warm-up rows (where any feature is not yet defined) are dropped explicitly and counted; nothing
is ever filled in. The matrix carries the spec hash, so a stored matrix names the exact set that
produced it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import ConfigError, DataError
from aitrader.features import mtf
from aitrader.features.bars import Bars, bars_from_candles
from aitrader.features.registry import resolve
from aitrader.features.spec import FeaturesConfig, FeatureSpec, spec_hash

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each feature spec."""


@dataclass(frozen=True)
class FeatureMatrix:
    """Feature values indexed like the candles, with warm-up rows already removed."""

    frame: pd.DataFrame
    dropped_warmup: int
    spec_hash: str
    warmup: dict[str, int]
    nan_rows: int

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


@dataclass(frozen=True)
class Computed:
    """One spec's columns, their values and the rows they need before being valid."""

    columns: list[str]
    values: list[np.ndarray]
    warmup: int


def column_names(spec: FeatureSpec) -> list[str]:
    """Column names a spec produces (``name__tf`` for higher-timeframe features)."""
    definition, params = resolve(spec.name, spec.params)
    suffix = f"__{spec.timeframe}" if spec.timeframe else ""
    return [c + suffix for c in definition.columns(params)]


def compute_spec(bars: Bars, spec: FeatureSpec, base_seconds: int | None = None) -> Computed:
    """Compute one spec on ``bars`` (on a higher timeframe when it names one).

    ``base_seconds`` is the data's timeframe, needed only for higher-timeframe specs (inferred
    from the bar spacing when omitted).
    """
    definition, params = resolve(spec.name, spec.params)
    names = column_names(spec)
    warm = definition.warmup(params)
    if spec.timeframe is None:
        values = definition.compute(bars, params)
        return Computed(names, [np.asarray(v, dtype=np.float64) for v in values], warm)
    base = base_seconds or mtf.infer_timeframe_seconds(bars.ts)
    htf_seconds = mtf.higher_seconds(spec.timeframe, base)
    htf, index = mtf.on_higher_timeframe(bars, base, htf_seconds)
    values = definition.compute(htf, params)
    aligned = [mtf.align(np.asarray(v, dtype=np.float64), index) for v in values]
    reached = np.flatnonzero(index >= warm)
    return Computed(names, aligned, int(reached[0]) if reached.size else len(bars))


def _check_columns(computed: list[Computed], specs: Sequence[FeatureSpec]) -> None:
    seen: dict[str, str] = {}
    for item, spec in zip(computed, specs, strict=True):
        for column in item.columns:
            if column in seen:
                raise ConfigError(
                    f"duplicate feature column {column!r} from {spec.label()} and {seen[column]}; "
                    "remove one of them"
                )
            seen[column] = spec.label()


def _leading_incomplete(missing: np.ndarray) -> int:
    complete = np.flatnonzero(~missing)
    return int(complete[0]) if complete.size else missing.shape[0]


def _specs_of(spec: FeaturesConfig | Sequence[FeatureSpec]) -> list[FeatureSpec]:
    specs = list(spec.specs()) if isinstance(spec, FeaturesConfig) else list(spec)
    if not specs:
        raise ConfigError("empty feature set: name at least one feature")
    for s in specs:
        resolve(s.name, s.params)
    return specs


def build_features(
    candles: pd.DataFrame,
    spec: FeaturesConfig | Sequence[FeatureSpec] | None = None,
    progress: Progress | None = None,
    timeframe: str | None = None,
) -> FeatureMatrix:
    """Compute a feature set on candles and drop the warm-up rows.

    ``spec`` defaults to the default set. ``timeframe`` (e.g. ``1h``) is the candles'
    timeframe, used by higher-timeframe features (inferred from bar spacing when omitted).
    Raises ConfigError for unknown features or bad parameters, DataError for invalid candles or
    a series too short to leave any row after warm-up.
    """
    specs = _specs_of(spec if spec is not None else FeaturesConfig())
    bars = bars_from_candles(candles)
    base = timeframe_seconds(timeframe) if timeframe else None
    if base is None and any(s.timeframe for s in specs):
        base = mtf.infer_timeframe_seconds(bars.ts)
    computed: list[Computed] = []
    for done, s in enumerate(specs, start=1):
        computed.append(compute_spec(bars, s, base))
        if progress is not None:
            progress(done, len(specs))
    _check_columns(computed, specs)
    columns = [c for item in computed for c in item.columns]
    block = np.empty((len(columns), len(bars)))  # one row per column: no transposing copies
    for j, values in enumerate(v for item in computed for v in item.values):
        block[j] = values
    declared = max(item.warmup for item in computed)
    missing = np.asarray(np.isnan(block).any(axis=0))
    dropped = max(declared, _leading_incomplete(missing))
    if dropped >= len(bars):
        longest = max(zip(computed, specs, strict=True), key=lambda p: p[0].warmup)[1]
        raise DataError(
            f"series too short for this feature set: {len(bars)} rows, warm-up needs more "
            f"(longest declared: {longest.label()} with {declared} rows)"
        )
    frame = pd.DataFrame(
        block[:, dropped:].T, index=candles.index[dropped:], columns=columns, copy=False
    )
    nan_rows = int(missing[dropped:].sum())
    if nan_rows:
        log.warning("feature matrix has %d rows with undefined values after warm-up", nan_rows)
    return FeatureMatrix(
        frame=frame,
        dropped_warmup=dropped,
        spec_hash=spec_hash(specs),
        warmup={s.label(): item.warmup for s, item in zip(specs, computed, strict=True)},
        nan_rows=nan_rows,
    )
