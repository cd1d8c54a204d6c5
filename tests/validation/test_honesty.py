"""Honesty: no edge on a random walk, a planted signal is found, a look-ahead leak is caught."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.features import registry
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.gbm import LightGBMParams
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.leakage import audit_features, truncation_violations
from aitrader.validation.splits import walk_forward
from aitrader.validation.walkforward import prepare

Factory = Callable[..., pd.DataFrame]
SPECS = [
    FeatureSpec(name="trend_strength", params={"window": 2}),
    FeatureSpec(name="roc", params={"period": 5}),
    FeatureSpec(name="rsi"),
    FeatureSpec(name="realized_vol"),
    FeatureSpec(name="zscore"),
    FeatureSpec(name="autocorr", params={"window": 50, "max_lag": 2}),
]
VALIDATION = ValidationConfig(min_train=2500, test_size=1500)


def model(kind: str) -> ModelConfig:
    return ModelConfig(kind=kind, lightgbm=LightGBMParams(n_estimators=100))  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lightgbm", "logistic"])
@pytest.mark.parametrize("label", ["direction3", "binary"])
def test_random_walk_has_no_edge(make_candles: Factory, kind: str, label: str) -> None:
    candles = make_candles(12_000, seed=7)
    prepared = prepare(candles, SPECS, LabelConfig(kind=label), CostsConfig())  # type: ignore[arg-type]
    result = evaluate(prepared, model(kind), VALIDATION)
    s = result.metrics
    p = s["majority_rate"]
    standard_error = math.sqrt(p * (1 - p) / s["n"])
    assert s["accuracy"] <= p + 3 * standard_error
    assert s["brier_skill"] <= 0.005
    assert s["psr"] < 0.95  # net-of-cost Sharpe not significantly positive
    assert s["net_sharpe_per_bar"] * math.sqrt(s["n"]) < 2.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lightgbm", "logistic", "persistence"])
def test_planted_signal_is_found(make_candles: Factory, kind: str) -> None:
    candles = make_candles(12_000, seed=3, phi=0.2)
    prepared = prepare(candles, SPECS, LabelConfig(kind="binary"), CostsConfig())
    result = evaluate(prepared, model(kind), VALIDATION)
    s = result.metrics
    standard_error = math.sqrt(0.25 / s["n"])
    assert s["accuracy"] > 0.5 + 4 * standard_error
    assert s["auc"] > 0.53
    assert s["brier_skill"] > 0.0


def _peek(b, p):  # type: ignore[no-untyped-def]
    """The next bar's return, visible at bar t: the leak."""
    return [pd.Series(b.close).pct_change().shift(-1).to_numpy()]


@pytest.fixture()
def peeking_feature() -> Iterator[FeatureSpec]:
    name = "leak_next_return"
    registry.register(
        registry.FeatureDef(
            name, "statistics", "test-only leak", {}, lambda p: [name], lambda p: 1, _peek
        )
    )
    try:
        yield FeatureSpec(name=name)
    finally:
        registry.unregister(name)


def test_leak_looks_too_good_and_is_flagged(
    make_candles: Factory, peeking_feature: FeatureSpec
) -> None:
    candles = make_candles(5000, seed=11)
    specs = [*SPECS[:3], peeking_feature]
    prepared = prepare(candles, specs, LabelConfig(kind="binary"), CostsConfig())
    config = ValidationConfig(min_train=2000, test_size=1000)
    result = evaluate(prepared, ModelConfig(kind="logistic"), config)
    assert result.metrics["accuracy"] > 0.9  # far too good to be true
    violations = audit_features(candles, specs, timeframe="1h")
    assert violations and {v.column for v in violations} == {"leak_next_return"}
    assert not audit_features(candles, SPECS, timeframe="1h")


def test_truncation_check_catches_any_frame_builder(make_candles: Factory) -> None:
    candles = make_candles(300)

    def honest(c: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ret": c["close"].pct_change()})

    def leaky(c: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ret": c["close"].pct_change().shift(-1)})

    cuts = [50, 150, 250]
    assert not truncation_violations(candles, honest, cuts)
    found = truncation_violations(candles, leaky, cuts)
    # the last row of each truncation differs, and so does that row when later bars change
    expected = [(c, check) for c in cuts for check in ("truncated", "future altered")]
    assert [(v.row, v.check) for v in found] == expected


def test_walk_forward_purges_rows_overlapping_test_labels(make_candles: Factory) -> None:
    candles = make_candles(4000, seed=5)
    labels = LabelConfig(kind="binary", horizon=6)
    prepared = prepare(candles, SPECS[:3], labels, CostsConfig())
    config = ValidationConfig(min_train=1500, test_size=1000)
    for fold in walk_forward(prepared.windows, config, embargo=prepared.horizon):
        a, c0 = fold.test[0], fold.calibrate[0]
        assert fold.calibrate[-1] == a - 6  # rows a-5..a-1 have labels ending inside the test
        assert fold.train[-1] == c0 - 6  # same between the model rows and calibration
        ends = prepared.windows.end[fold.calibrate]
        assert ends.max() <= prepared.windows.start[a]
    np.testing.assert_array_equal(prepared.windows.end - prepared.windows.start, 6 * 3600 * 10**9)
