"""Tracked runs land in a real SQLite MLflow store and are reproducible (same config, data, seed
→ same metrics)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.validation.config import TrackingConfig, ValidationConfig
from aitrader.validation.experiment import ExperimentConfig, Source, run_evaluate, run_train
from aitrader.validation.tracking import flatten, git_sha

Factory = Callable[..., pd.DataFrame]


def config(tmp_path: Path) -> ExperimentConfig:
    return ExperimentConfig(
        features=FeaturesConfig(
            preset="none",
            extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc"), FeatureSpec(name="zscore")),
        ),
        labels=LabelConfig(kind="binary"),
        models=ModelConfig(lightgbm={"n_estimators": 30, "subsample": 0.7}, seed=7),
        validation=ValidationConfig(min_train=1000, test_size=500),
        tracking=TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="test"),
    )


@pytest.mark.slow
def test_tracked_runs_are_reproducible(make_candles: Factory, tmp_path: Path) -> None:
    source = Source("synthetic", make_candles(2500, seed=1), "1h")
    cfg = config(tmp_path)
    first = run_evaluate(source, cfg, tmp_path)[2]
    second = run_evaluate(source, cfg, tmp_path)[2]
    assert first and second and first != second
    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    runs = [client.get_run(first), client.get_run(second)]
    assert runs[0].data.metrics == runs[1].data.metrics
    assert {"accuracy", "log_loss", "brier_skill", "ece", "net_sharpe", "dsr"} <= set(
        runs[0].data.metrics
    )
    tags = runs[0].data.tags
    assert tags["seed"] == "7" and len(tags["data_checksum"]) == 64
    assert tags["feature_spec_hash"] == cfg.features.spec_hash()
    sha = git_sha()
    assert tags.get("git_sha") == sha if sha else "git_sha" not in tags
    assert runs[0].data.params["models.lightgbm.n_estimators"] == "30"
    artefacts = {a.path for a in client.list_artifacts(first)}
    assert {"config.json", "folds.csv", "predictions.csv", "reliability.csv"} <= artefacts
    assert (tmp_path / "mlflow.db").is_file()


def test_train_saves_and_tracks_a_bundle(make_candles: Factory, tmp_path: Path) -> None:
    source = Source("synthetic", make_candles(1500, seed=2), "1h")
    cfg = config(tmp_path)
    _, path, run_id = run_train(source, cfg, tmp_path)
    assert (path / "bundle.json").is_file() and path.parent == tmp_path / "models"
    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    assert run_id is not None
    assert "bundle" in {a.path for a in client.list_artifacts(run_id)}
    assert client.get_run(run_id).info.status == "FINISHED"


def test_tracking_can_be_disabled(make_candles: Factory, tmp_path: Path) -> None:
    cfg = config(tmp_path).model_copy(update={"tracking": TrackingConfig(enabled=False)})
    _, _, run_id = run_evaluate(Source("s", make_candles(2000), "1h"), cfg, tmp_path)
    assert run_id is None and not (tmp_path / "mlflow.db").exists()


def test_flatten_dots_nested_keys() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "null",
    }
