"""Experiment tracking with MLflow (``mlflow-skinny``), called only from the pipeline/CLI layer.

Uses an explicit ``MlflowClient`` (no global tracking state): a SQLite backend under the data
directory by default (``sqlite:///<data dir>/mlflow.db``, artefacts in ``<data dir>/mlartifacts``)
or any URI from the configuration. Each run records the config, data checksum, git SHA when
available, seeds, metrics and artefacts.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.errors import ConfigError
from aitrader.validation.config import TrackingConfig

_BATCH = 100


def tracking_uri(config: TrackingConfig, data_dir: Path) -> str:
    """The configured URI, or a SQLite file under the data directory."""
    if config.uri:
        return config.uri
    return f"sqlite:///{(Path(data_dir).expanduser().resolve() / 'mlflow.db')}"


def git_sha(start: Path | None = None) -> str | None:
    """The commit of the working tree holding this package (None outside a git checkout)."""
    where = start or Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping → dotted keys with string values (MLflow params)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = json.dumps(value, default=str)[:6000]
    return out


class Run:
    """One MLflow run; use as a context manager (status FINISHED, or FAILED on an exception)."""

    def __init__(self, config: TrackingConfig, data_dir: Path, name: str) -> None:
        from mlflow.tracking import MlflowClient

        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=tracking_uri(config, self.data_dir))
        self.experiment_id = self._experiment(config.experiment)
        self.run_id = str(self.client.create_run(self.experiment_id, run_name=name).info.run_id)

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        artefacts = (self.data_dir.resolve() / "mlartifacts").as_uri()
        return str(self.client.create_experiment(name, artifact_location=artefacts))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if kind else "FINISHED")

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Every config key as a param, and the whole config as ``config.json``."""
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten(config).items()]
        for i in range(0, len(params), _BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + _BATCH])
        self.log_json("config.json", config)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """String tags (None values skipped)."""
        for key, value in tags.items():
            if value is not None:
                self.client.set_tag(self.run_id, key, str(value))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Finite metrics only (MLflow rejects NaN in some backends)."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), stamp, step) for k, v in metrics.items() if math.isfinite(float(v))
        ]
        for i in range(0, len(batch), _BATCH):
            self.client.log_batch(self.run_id, metrics=batch[i : i + _BATCH])

    def log_json(self, name: str, payload: object) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(payload, indent=2, default=str))
            self.client.log_artifact(self.run_id, str(path))

    def log_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A table as a CSV artefact."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            frame.to_csv(path)
            self.client.log_artifact(self.run_id, str(path))

    def log_dir(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(path), artifact_path)


def start_run(config: TrackingConfig, data_dir: Path, name: str) -> Run | None:
    """A new run, or None when tracking is disabled; ConfigError if the backend is unusable."""
    if not config.enabled:
        return None
    try:
        return Run(config, data_dir, name)
    except ImportError:
        raise ConfigError(
            "tracking needs mlflow: pip install 'aitrader[tracking]' (or set tracking.enabled: "
            "false)"
        ) from None
