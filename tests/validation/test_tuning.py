"""Tuning: every trial counted, a killed run resumes where it stopped, process pool and Ray."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.validation.config import TuningConfig, ValidationConfig
from aitrader.validation.experiment import ExperimentConfig
from aitrader.validation.tuning import open_study, tune
from aitrader.validation.walkforward import Prepared, prepare

Factory = Callable[..., pd.DataFrame]
SPECS = [FeatureSpec(name="rsi"), FeatureSpec(name="roc"), FeatureSpec(name="zscore")]


def experiment(tmp_path: Path, **tuning: object) -> ExperimentConfig:
    return ExperimentConfig(
        labels=LabelConfig(kind="binary"),
        models=ModelConfig(kind="logistic"),
        validation=ValidationConfig(min_train=800, test_size=400),
        tuning=TuningConfig.model_validate(
            {"storage": f"sqlite:///{tmp_path / 'optuna.db'}", "study_name": "t"} | tuning
        ),
    )


@pytest.fixture()
def prepared(make_candles: Factory) -> Prepared:
    return prepare(make_candles(2000, seed=3), SPECS, LabelConfig(kind="binary"), CostsConfig())


def test_tune_counts_every_trial_and_reports_overfitting(
    prepared: Prepared, tmp_path: Path
) -> None:
    config = experiment(tmp_path, n_trials=5)
    result = tune(prepared, config, tmp_path)
    assert (result.trials, result.completed, result.failed) == (5, 5, 0)
    assert 0.0 <= result.dsr <= 1.0 and 0.0 <= result.pbo <= 1.0
    assert "C" in result.best_params and result.best_value == pytest.approx(
        result.best_metrics["log_loss"]
    )
    again = tune(prepared, experiment(tmp_path, n_trials=7), tmp_path)  # resumes: 2 more
    assert again.trials == 7
    assert len(list((tmp_path / "tuning" / "t").glob("trial_*.npy"))) == 7


def test_net_sharpe_objective_maximises(prepared: Prepared, tmp_path: Path) -> None:
    result = tune(prepared, experiment(tmp_path, n_trials=3, objective="net_sharpe"), tmp_path)
    assert result.best_value == pytest.approx(result.best_metrics["net_sharpe_per_bar"])
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE


SCRIPT = """
import sys
import numpy as np, pandas as pd
from pathlib import Path
from aitrader.config import CostsConfig
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.validation.config import TuningConfig, ValidationConfig
from aitrader.validation.experiment import ExperimentConfig
from aitrader.validation.tuning import tune
from aitrader.validation.walkforward import prepare

rng = np.random.default_rng(0)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, 3000)))
index = pd.date_range("2021-01-01", periods=3000, freq="1h", tz="UTC", name="timestamp")
candles = pd.DataFrame(
    {"open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": 1.0},
    index=index,
)
specs = [FeatureSpec(name="rsi"), FeatureSpec(name="roc"), FeatureSpec(name="zscore")]
data = Path(sys.argv[1])
config = ExperimentConfig(
    labels=LabelConfig(kind="binary"),
    models=ModelConfig(lightgbm={"n_estimators": 50}),
    validation=ValidationConfig(min_train=1000, test_size=500),
    tuning=TuningConfig(n_trials=int(sys.argv[2]), study_name="killed"),
)
prepared = prepare(candles, specs, config.labels, config.costs)
result = tune(prepared, config, data)
print("TRIALS", result.trials, result.completed, result.failed)
"""


def _completed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


@pytest.mark.slow
def test_killed_run_resumes_and_keeps_counting(tmp_path: Path) -> None:
    script = tmp_path / "tune.py"
    script.write_text(textwrap.dedent(SCRIPT))
    db = tmp_path / "optuna.db"
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path), "40"])
    deadline = time.monotonic() + 120
    while _completed(db) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    storage = f"sqlite:///{db}"
    before = optuna.load_study(study_name="killed", storage=storage).get_trials()
    kept = {t.number: t.value for t in before if t.state.name == "COMPLETE"}
    assert 2 <= len(kept) < 40
    total = len(before) + 2
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(total)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after = optuna.load_study(study_name="killed", storage=storage).get_trials()
    assert [t.number for t in after] == list(range(total))  # numbering continues
    assert {t.number: t.value for t in after if t.number in kept} == kept
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in after)
    assert f"TRIALS {total} " in done.stdout


@pytest.mark.slow
def test_process_pool_runs_trials_in_parallel(prepared: Prepared, tmp_path: Path) -> None:
    result = tune(prepared, experiment(tmp_path, n_trials=4, workers=2), tmp_path)
    assert (result.trials, result.completed) == (4, 4)


@pytest.mark.slow
def test_ray_runs_a_tiny_tuning_job(prepared: Prepared, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        config = experiment(tmp_path, n_trials=4, workers=2, ray_address="local")
        result = tune(prepared, config, tmp_path)
    finally:
        ray.shutdown()
    assert (result.trials, result.completed) == (4, 4)
    assert math.isfinite(result.best_value)


def test_stale_running_trials_are_failed_on_open(tmp_path: Path) -> None:
    config = experiment(tmp_path).tuning
    study = open_study(config, tmp_path)
    study.ask()  # a trial left RUNNING, as by a killed process
    reopened = open_study(config, tmp_path)
    assert [t.state.name for t in reopened.get_trials()] == ["FAIL"]
