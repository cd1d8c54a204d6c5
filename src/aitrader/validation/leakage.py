"""Leak audits for a pipeline's inputs: every feature recomputed on truncated history.

Reuses the feature package's harness (:func:`aitrader.features.causality.check_causality`) for
declared feature specs, and offers the same truncation check for any frame-building function
and for a fitted prediction chain (:func:`model_violations`: probabilities and agent outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from aitrader.data.timeframes import timeframe_seconds
from aitrader.features.bars import bars_from_candles
from aitrader.features.causality import Violation, check_causality, random_cuts
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.models.agents import agent_outputs
from aitrader.models.predictor import Predictor


def audit_features(
    candles: pd.DataFrame,
    features: FeaturesConfig | Sequence[FeatureSpec],
    cuts: Sequence[int] | None = None,
    timeframe: str | None = None,
) -> list[Violation]:
    """Causality violations of every spec (empty when nothing looks ahead).

    ``cuts`` default: 8 random rows after the first tenth of the data (seeded, reproducible).
    """
    specs = list(features.specs()) if isinstance(features, FeaturesConfig) else list(features)
    bars = bars_from_candles(candles)
    chosen = list(cuts) if cuts is not None else random_cuts(len(bars), 8, len(bars) // 10)
    base = timeframe_seconds(timeframe) if timeframe else None
    found: list[Violation] = []
    for spec in specs:
        found.extend(check_causality(bars, spec, chosen, base))
    return found


def truncation_violations(
    candles: pd.DataFrame,
    build: Callable[[pd.DataFrame], pd.DataFrame],
    cuts: Sequence[int],
) -> list[Violation]:
    """Rows of ``build(candles)`` that change when the candles end at a cut (first per column)."""
    full = build(candles)
    found: list[Violation] = []
    for cut in cuts:
        head = build(candles.iloc[: cut + 1])
        expected = full.reindex(head.index)
        for column in full.columns:
            a = expected[column].to_numpy(dtype=np.float64)
            b = head[column].to_numpy(dtype=np.float64)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                row = int(np.flatnonzero(~same)[0])
                found.append(Violation(str(column), cut, row, float(a[row]), float(b[row])))
    return found


def model_violations(
    candles: pd.DataFrame,
    features: FeaturesConfig | Sequence[FeatureSpec],
    predictor: Predictor,
    cuts: Sequence[int],
    timeframe: str | None = None,
) -> list[Violation]:
    """The causality harness for a fitted model: its probabilities and named outputs
    (:func:`aitrader.models.agents.agent_outputs`) on features rebuilt from candles that end at
    each cut must equal those of the full series (a model that decodes the whole sequence it
    is given, e.g. Viterbi, fails)."""

    def build(frame: pd.DataFrame) -> pd.DataFrame:
        X = build_features(frame, features, timeframe=timeframe).frame
        X = X[np.isfinite(X.to_numpy()).all(axis=1)]
        names = [f"p_{c}" for c in predictor.classes]
        proba = pd.DataFrame(predictor.predict_proba(X), index=X.index, columns=names)
        return proba.join(agent_outputs(predictor, X))

    return truncation_violations(candles, build, cuts)
