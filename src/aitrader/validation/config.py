"""Typed, frozen configuration of validation, tuning and experiment tracking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aitrader.frozen import Frozen


class ValidationConfig(Frozen):
    """How out-of-sample predictions are produced: walk-forward, purged k-fold or CPCV.

    Walk-forward refits every ``test_size`` rows; ``embargo`` None means the label horizon.
    The last ``calibration_fraction`` of each training window fits the calibrator and tunes the
    trading decision; the model trains on the (purged) rows before it.
    """

    scheme: Literal["walk_forward", "purged_kfold", "cpcv"] = "walk_forward"
    window: Literal["expanding", "sliding"] = "expanding"
    min_train: int = Field(3000, ge=50, description="rows in the first training window")
    train_size: int | None = Field(None, ge=50, description="sliding window rows (min_train)")
    test_size: int = Field(1000, ge=1, description="rows per test block = refit every N rows")
    max_folds: int | None = Field(None, ge=1, description="keep only the last N folds")
    calibration_fraction: float = Field(0.2, gt=0, lt=0.9)
    embargo: int | None = Field(None, ge=0, description="rows after a test block; None: horizon")
    n_splits: int = Field(5, ge=2, le=100, description="purged k-fold: number of folds")
    cpcv_groups: int = Field(6, ge=3, le=32, description="CPCV: number of groups")
    cpcv_test_groups: int = Field(2, ge=1, le=16, description="CPCV: groups per test set")
    n_jobs: int | None = Field(
        None,
        ge=1,
        le=256,
        description="folds fitted in parallel (process pool); None: one per core on ≥ 20,000 rows",
    )
    ece_bins: int = Field(10, ge=2, le=100)

    @model_validator(mode="after")
    def _cpcv_fits(self) -> ValidationConfig:
        if self.cpcv_test_groups >= self.cpcv_groups:
            raise ValueError("cpcv_test_groups must be smaller than cpcv_groups")
        return self


class TuningConfig(Frozen):
    """Optuna (TPE) tuning with a walk-forward objective; every trial is counted.

    ``storage`` None means ``sqlite:///<data dir>/optuna.db``. ``workers`` > 1 evaluates trials
    in parallel on a local process pool, or on Ray when ``ray_address`` is given.
    """

    n_trials: int = Field(30, ge=1, le=100_000, description="total trials of the study")
    study_name: str | None = Field(
        None, min_length=1, description="None: MODEL-DATASET-TIMEFRAME-OBJECTIVE (never mixed)"
    )
    storage: str | None = None
    objective: Literal["log_loss", "net_sharpe"] = "log_loss"
    seed: int = Field(0, ge=0, description="TPE sampler seed")
    workers: int = Field(1, ge=1, le=1024)
    ray_address: str | None = Field(None, description="'local', 'auto' or ray://host:port")
    timeout: float | None = Field(None, gt=0, description="seconds before no new trial starts")


class TrackingConfig(Frozen):
    """MLflow tracking; ``uri`` None means ``sqlite:///<data dir>/mlflow.db``."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = Field("aitrader", min_length=1)
