"""Bundles round-trip exactly and refuse data built with a different feature spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.features.spec import FeatureSpec, spec_hash
from aitrader.labels import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.registry import BundleError, load_bundle, save_bundle
from aitrader.validation.config import ValidationConfig
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare

SPECS = [FeatureSpec(name="rsi"), FeatureSpec(name="roc"), FeatureSpec(name="realized_vol")]


def candles(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    index = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0},
        index=index,
    )


@pytest.fixture(scope="module")
def trained() -> tuple:  # type: ignore[type-arg]
    config = ExperimentConfig(
        labels=LabelConfig(kind="binary"),
        models=ModelConfig(lightgbm={"n_estimators": 20}),
        validation=ValidationConfig(),
    )
    data = candles()
    prepared = prepare(data, SPECS, config.labels, CostsConfig())
    return train_bundle(prepared, config), prepared


def test_round_trip_predicts_identically(trained: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, prepared = trained
    path = save_bundle(bundle, tmp_path / "model")
    loaded = load_bundle(path, spec_hash=prepared.spec_hash)
    np.testing.assert_array_equal(
        loaded.predictor.predict_proba(prepared.X), bundle.predictor.predict_proba(prepared.X)
    )
    assert loaded.info == bundle.info
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["feature_spec_hash"] == spec_hash(SPECS)
    assert meta["label"]["kind"] == "binary" and meta["horizon"] == 1
    assert meta["train_window"][1] < meta["calibration_window"][0]
    assert {"lightgbm", "scikit-learn", "numpy"} <= set(meta["versions"])
    assert "threshold" not in meta  # the deleted vectorised rule; the decision is tuned per market


def test_refuses_a_different_feature_spec(trained: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bundle, _ = trained
    path = save_bundle(bundle, tmp_path / "model")
    other = spec_hash([*SPECS, FeatureSpec(name="atr")])
    with pytest.raises(BundleError, match=r"trained on feature spec \w+ but the data uses"):
        load_bundle(path, spec_hash=other)


def test_not_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)
