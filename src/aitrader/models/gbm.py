"""LightGBM: the default model kind (deterministic and single-threaded unless asked).

Bundles hold the booster in LightGBM's own text format (``model.txt``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import Field

from aitrader.frozen import Frozen
from aitrader.models.base import (
    ArrayLike,
    ClassifierBase,
    as_matrix,
    check_training,
    class_columns,
)
from aitrader.models.codecs import BoosterCodec
from aitrader.models.kinds import ModelKind, register

if TYPE_CHECKING:
    from optuna.trial import Trial


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


class LightGBMModel(ClassifierBase):
    """Gradient-boosted trees (LightGBM) with deterministic, row-wise training; predictions
    come from the fitted booster (``booster_``), the part a bundle saves."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the booster on a training window."""
        from lightgbm import LGBMClassifier

        features, labels = check_training(X, y)
        p = self.params or LightGBMParams()
        estimator = LGBMClassifier(
            n_estimators=p.n_estimators,
            learning_rate=p.learning_rate,
            num_leaves=p.num_leaves,
            max_depth=p.max_depth,
            min_child_samples=p.min_child_samples,
            subsample=p.subsample,
            subsample_freq=1 if p.subsample < 1 else 0,
            colsample_bytree=p.colsample_bytree,
            reg_lambda=p.reg_lambda,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        self._fit_estimator(estimator, features, labels)
        self.booster_ = estimator.booster_
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities from the booster, columns in ``classes_`` order."""
        self._check_fitted()
        return class_columns(self.booster_.predict(as_matrix(X), num_threads=self.n_jobs))


def _read_booster(data: bytes, model: LightGBMModel) -> Any:
    from lightgbm import Booster

    return Booster(model_str=data.decode())


def search_space(trial: Trial) -> dict[str, Any]:
    """The main LightGBM hyper-parameters for Optuna."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 1000, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    }


register(
    ModelKind(
        name="lightgbm",
        summary="gradient-boosted trees (LightGBM), the default",
        estimator=LightGBMModel,
        params=LightGBMParams,
        codec=BoosterCodec("model.txt", lambda b: b.model_to_string().encode(), _read_booster),
        space=search_space,
    )
)
