"""The ``models`` config section: each kind's parameters in a section named after it, validated
by the kind; configs written for the old fixed sections still load, and what changed is a
clear error naming the key, the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrader.config import load_settings
from aitrader.errors import ConfigError
from aitrader.models.forest import ForestParams
from aitrader.models.xgb import XGBoostParams

OLD_FULL_DUMP = """
models:
  kind: random_forest
  seed: 7
  n_jobs: 1
  scaler: robust
  scaler_clip: 10.0
  calibration: isotonic
  {persistence}
  lightgbm: {{n_estimators: 200, learning_rate: 0.03, num_leaves: 15, max_depth: -1,
             min_child_samples: 100, subsample: 0.8, colsample_bytree: 0.8, reg_lambda: 1.0}}
  random_forest: {{n_estimators: 50, max_depth: 6, min_samples_leaf: 50, max_features: 0.3}}
  logistic: {{C: 0.1, max_iter: 1000}}
  xgboost: {{n_estimators: 200, learning_rate: 0.03, max_depth: 4, min_child_weight: 10.0,
            subsample: 0.8, colsample_bytree: 0.8, reg_lambda: 1.0}}
  {decision}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aitrader.yaml"
    path.write_text(text)
    return path


def test_a_config_with_every_old_section_still_loads(tmp_path: Path) -> None:
    models = load_settings(
        write(tmp_path, OLD_FULL_DUMP.format(persistence="", decision=""))
    ).models
    assert models.kind == "random_forest" and models.seed == 7
    assert models.params() == ForestParams(n_estimators=50)
    assert models.params("xgboost") == XGBoostParams()


def test_the_moved_persistence_column_names_its_replacement(tmp_path: Path) -> None:
    text = OLD_FULL_DUMP.format(persistence="persistence_column: trend_strength_2", decision="")
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text))
    message = str(error.value)
    assert "aitrader.yaml" in message and "models.persistence_column" in message
    assert "`persistence: {column: NAME}`" in message


def test_the_removed_decision_section_says_what_replaced_it(tmp_path: Path) -> None:
    text = OLD_FULL_DUMP.format(persistence="", decision="decision: {threshold: null}")
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text))
    message = str(error.value)
    assert "models.decision" in message and "tuned on each bundle's calibration slice" in message


def test_bad_kind_and_bad_parameter_name_the_key(tmp_path: Path) -> None:
    text = "models:\n  kind: lightgbn\n  lightgbm: {num_leaves: 1}\n  forest: {}\n"
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text))
    lines = str(error.value).splitlines()
    assert any(
        line.startswith("  models.kind = 'lightgbn'")
        and "available: lightgbm, random_forest" in line
        for line in lines
    )
    assert any(
        line.startswith("  models.lightgbm = {'num_leaves': 1}")
        and "num_leaves: Input should be greater than or equal to 2" in line
        for line in lines
    )
    assert any(
        line.startswith("  models.forest = {}") and "nor a model kind" in line for line in lines
    )


def test_environment_sets_a_kind_parameter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AITRADER__MODELS__KIND", "xgboost")
    monkeypatch.setenv("AITRADER__MODELS__XGBOOST__MAX_DEPTH", "6")
    models = load_settings(write(tmp_path, "models: {seed: 3}\n")).models
    assert models.kind == "xgboost" and models.params() == XGBoostParams(max_depth=6)
