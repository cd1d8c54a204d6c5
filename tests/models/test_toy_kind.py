"""A model kind added from this one file and nothing else: declared and registered here, then
listed, configured from YAML, evaluated, trained, saved, loaded, scanned and tuned through the
same commands as the built-in kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
import typer
from pydantic import Field, ValidationError
from typer.testing import CliRunner

from aitrader.cli.models import evaluate_command, models_app, train_command, tune_command
from aitrader.cli.scan import scan_command
from aitrader.data.samples import load_sample
from aitrader.data.store import DatasetKey, Store
from aitrader.frozen import Frozen
from aitrader.models import kinds
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.codecs import AttributesCodec
from aitrader.models.config import ModelConfig
from aitrader.models.registry import load_bundle


class CentroidParams(Frozen):
    """How far the class means are pulled towards zero."""

    shrink: float = Field(0.25, ge=0, lt=1)


class CentroidModel(ClassifierBase):
    """Nearest class mean: a softmax over minus the squared distance to each class's mean."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        features, labels = check_training(X, y)
        shrink = (self.params or CentroidParams()).shrink
        self.classes_ = np.unique(labels)
        means = [features[labels == c].mean(axis=0) for c in self.classes_]
        self.means_ = (1.0 - shrink) * np.stack(means)
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        self._check_fitted()
        distance = ((as_matrix(X)[:, None, :] - self.means_[None, :, :]) ** 2).sum(axis=2)
        z = np.exp(-(distance - distance.min(axis=1, keepdims=True)))
        return np.asarray(z / z.sum(axis=1, keepdims=True))


CENTROID = kinds.ModelKind(
    name="centroid",
    summary="nearest class mean (a test kind)",
    estimator=CentroidModel,
    params=CentroidParams,
    codec=AttributesCodec(("classes_", "means_", "n_features_in_")),
    space=lambda trial: {"shrink": trial.suggest_float("shrink", 0.0, 0.9)},
)

CONFIG = """
data:
  dir: {data}
features:
  preset: none
  extra: [{{name: rsi}}, {{name: roc}}]
models:
  kind: centroid
  centroid: {{shrink: 0.5}}
"""
DATASET = "kraken:BTC/USD:1h"


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    kinds.register(CENTROID)
    yield
    kinds.unregister("centroid")


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    path = tmp_path / "aitrader.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    Store(tmp_path / "data").write(
        DatasetKey.parse(DATASET), load_sample("BTC-USD-1h").iloc[:6000], "test"
    )
    monkeypatch.setenv("AITRADER_CONFIG", str(path))
    return CliRunner()


def app() -> typer.Typer:
    cli = typer.Typer()
    for name, command in (("train", train_command), ("evaluate", evaluate_command)):
        cli.command(name)(command)
    cli.command("tune")(tune_command)
    cli.command("scan")(scan_command)
    cli.add_typer(models_app, name="models")
    return cli


def run(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_the_kind_is_listed_and_its_section_validated(runner: CliRunner) -> None:
    listed = json.loads(runner.invoke(app(), ["models", "kinds", "--json"]).stdout)
    assert {"name": "centroid", "params": {"shrink": 0.25}, "bundle": "safe"}.items() <= next(
        row for row in listed if row["name"] == "centroid"
    ).items()
    config = ModelConfig.model_validate({"kind": "centroid", "centroid": {"shrink": 0.5}})
    assert config.params() == CentroidParams(shrink=0.5)
    with pytest.raises(ValidationError, match=r"centroid\n.*shrink: Input should be less than 1"):
        ModelConfig.model_validate({"centroid": {"shrink": 1.5}})


def test_evaluate_train_scan_and_tune_the_new_kind(runner: CliRunner, tmp_path: Path) -> None:
    evaluated = run(runner, "evaluate", DATASET, "--no-track")
    assert evaluated["model"] == "centroid" and 0.0 < evaluated["accuracy"] < 1.0
    out = tmp_path / "bundle"
    run(runner, "train", DATASET, "-o", str(out), "--no-track")
    bundle = load_bundle(out)  # safe format: no trust needed
    assert bundle.info.model["centroid"] == {"shrink": 0.5}
    assert bundle.predictor.model.params == CentroidParams(shrink=0.5)
    assert {"model.json", "model.npz"} <= {p.name for p in out.iterdir()}
    scanned = run(runner, "scan", DATASET, "--model", str(out), "--bars", "1000")
    (result,) = scanned["results"]
    assert result["source"].startswith(f"model bundle {out} (centroid")
    tuned = run(runner, "tune", DATASET, "-n", "2", "--no-track")
    assert tuned["trials"] == 2 and 0.0 <= tuned["best_params"]["shrink"] <= 0.9


def test_an_unregistered_kind_is_refused_with_the_list(runner: CliRunner) -> None:
    kinds.unregister("centroid")
    result = runner.invoke(app(), ["evaluate", DATASET])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "models.kind = 'centroid'" in message and "available: lightgbm" in message


def test_configuration_never_imports_the_model_libraries() -> None:
    code = (
        "import sys\n"
        "from aitrader.config import Settings\n"
        "from aitrader.models.config import ModelConfig\n"
        "ModelConfig.model_validate({'kind': 'xgboost', 'lightgbm': {'n_estimators': 5}})\n"
        "Settings(models={'kind': 'random_forest'})\n"
        "print(sorted({'sklearn', 'lightgbm', 'xgboost', 'optuna'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
