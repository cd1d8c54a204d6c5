"""The causality harness for everything downstream of the bars: nothing at row ``t`` may change
when the rows after ``t`` are cut off or replaced.

- :func:`audit_features`: declared feature specs, through the feature package's harness
  (:func:`aitrader.features.causality.check_causality`, bars truncated at each cut);
- :func:`truncation_violations`: any function from a frame to a frame or array (a feature
  builder, a prediction function);
- :func:`model_violations`: a fitted prediction chain, every model kind: its probabilities and
  named agent outputs (:func:`aitrader.models.agents.agent_outputs`). A model that decodes the
  whole sequence it is given (Viterbi, a centred or bidirectional window) fails.

Each cut ``c`` is checked twice: on rows ``0..c`` alone ("truncated") and on all rows with those
after ``c`` replaced by shuffled, sign-flipped other rows ("future altered", which also catches a
model that pads a short input the way the future happens to look). Values must be equal bit for
bit (NaN equal to NaN); a row missing from one result counts as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from aitrader.data.timeframes import timeframe_seconds
from aitrader.features.bars import bars_from_candles
from aitrader.features.causality import Violation, check_causality, random_cuts
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


Output: TypeAlias = pd.DataFrame | pd.Series | np.ndarray


def truncation_violations(
    data: pd.DataFrame,
    build: Callable[[pd.DataFrame], Output],
    cuts: Sequence[int],
    seed: int = 0,
) -> list[Violation]:
    """Rows of ``build(data)`` at or before a cut that change when ``data`` ends at the cut or
    its later rows are replaced (the first differing row per column, cut and check).

    ``build`` returns a frame or series (rows matched by index) or an array with one row per
    input row; row numbers in the violations are positions in ``data``.
    """
    full = _as_frame(build(data), data)
    rng = np.random.default_rng(seed)
    found: list[Violation] = []
    for cut in cuts:
        truncated = data.iloc[: cut + 1]
        found.extend(_differences(full, _as_frame(build(truncated), truncated), data, cut))
        altered = _future_altered(data, cut, rng)
        got = _as_frame(build(altered), altered)
        found.extend(_differences(full, got, data, cut, "future altered"))
    return found


def _as_frame(out: Output, data: pd.DataFrame) -> pd.DataFrame:
    if isinstance(out, pd.Series):
        return out.to_frame()
    if isinstance(out, pd.DataFrame):
        return out
    values = np.asarray(out, dtype=np.float64).reshape(len(data), -1)
    names = [f"output {i}" for i in range(values.shape[1])]
    return pd.DataFrame(values, index=data.index, columns=names)


def _future_altered(data: pd.DataFrame, cut: int, rng: np.random.Generator) -> pd.DataFrame:
    """``data`` (as floats) with the rows after ``cut`` replaced by a shuffled, sign-flipped and
    scaled copy of themselves."""
    values = data.to_numpy(dtype=np.float64, copy=True)
    future = values[cut + 1 :]
    values[cut + 1 :] = future[rng.permutation(len(future))] * -1.5
    return pd.DataFrame(values, index=data.index, columns=data.columns)


def _differences(
    full: pd.DataFrame, got: pd.DataFrame, data: pd.DataFrame, cut: int, check: str = "truncated"
) -> list[Violation]:
    known = full.index.isin(data.index[: cut + 1])
    expected = full[known]
    head = got[~got.index.duplicated()].reindex(index=expected.index, columns=full.columns)
    rows = data.index.get_indexer(expected.index)
    found = []
    for column in full.columns:
        a = expected[column].to_numpy(dtype=np.float64)
        b = head[column].to_numpy(dtype=np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            found.append(Violation(str(column), cut, int(rows[i]), float(a[i]), float(b[i]), check))
    return found


def model_violations(
    predictor: Predictor, X: pd.DataFrame, cuts: Sequence[int], seed: int = 0
) -> list[Violation]:
    """The causality harness for a fitted chain of any kind: its calibrated probabilities
    (``p_<class>``) and named agent outputs on feature rows ``X`` (causal features, e.g. audited
    by :func:`audit_features`), checked by :func:`truncation_violations`."""

    def build(frame: pd.DataFrame) -> pd.DataFrame:
        names = [f"p_{c}" for c in predictor.classes]
        proba = pd.DataFrame(predictor.predict_proba(frame), index=frame.index, columns=names)
        return proba.join(agent_outputs(predictor, frame))

    return truncation_violations(X, build, cuts, seed)
