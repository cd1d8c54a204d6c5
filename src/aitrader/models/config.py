"""Typed, frozen configuration of models and their calibration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ModelKind = Literal["lightgbm", "random_forest", "logistic", "majority", "persistence", "xgboost"]


class Frozen(BaseModel):
    """Immutable, unknown keys rejected (like :class:`aitrader.config.Frozen`, which this module
    cannot import: ``aitrader.config`` imports this module for its ``Settings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LightGBMParams(Frozen):
    """LightGBM hyper-parameters (conservative defaults for noisy financial labels)."""

    n_estimators: int = Field(200, ge=1, le=100_000)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2, le=4096)
    max_depth: int = Field(-1, ge=-1, le=64, description="-1: no limit")
    min_child_samples: int = Field(100, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)


class ForestParams(Frozen):
    """Random-forest hyper-parameters."""

    n_estimators: int = Field(200, ge=1, le=10_000)
    max_depth: int | None = Field(6, ge=1, le=256)
    min_samples_leaf: int = Field(50, ge=1)
    max_features: float = Field(0.3, gt=0, le=1, description="fraction of columns per split")


class LogisticParams(Frozen):
    """L2-regularised multinomial logistic regression."""

    C: float = Field(0.1, gt=0, description="inverse regularisation strength")
    max_iter: int = Field(1000, ge=10)


class XGBoostParams(Frozen):
    """XGBoost hyper-parameters (needs the ``xgboost`` extra)."""

    n_estimators: int = Field(200, ge=1, le=100_000)
    learning_rate: float = Field(0.03, gt=0, le=1)
    max_depth: int = Field(4, ge=1, le=64)
    min_child_weight: float = Field(10.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)


class ModelConfig(Frozen):
    """Which model to fit, with its scaler and calibrator."""

    kind: ModelKind = "lightgbm"
    seed: int = Field(42, ge=0, description="random seed of every stochastic step")
    n_jobs: int = Field(1, ge=1, le=256, description="threads per model fit")
    scaler: Literal["standard", "robust", "none"] = "robust"
    scaler_clip: float | None = Field(10.0, gt=0, description="clip scaled values to ±clip")
    calibration: Literal["isotonic", "sigmoid", "none"] = "sigmoid"
    persistence_column: str = Field(
        "trend_strength_2",
        min_length=1,
        description="persistence baseline: a column whose sign is the last bar's move",
    )
    lightgbm: LightGBMParams = LightGBMParams()
    random_forest: ForestParams = ForestParams()
    logistic: LogisticParams = LogisticParams()
    xgboost: XGBoostParams = XGBoostParams()
