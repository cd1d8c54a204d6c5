"""XGBoost behind the optional ``xgboost`` extra (``pip install 'aitrader[xgboost]'``).

Bundles hold the booster in XGBoost's own JSON format (``model.json``).
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
from aitrader.models.kinds import ModelKind, get, register

if TYPE_CHECKING:
    from optuna.trial import Trial


class XGBoostParams(Frozen):
    """XGBoost hyper-parameters (needs the ``xgboost`` extra)."""

    n_estimators: int = Field(200, ge=1, le=100_000)
    learning_rate: float = Field(0.03, gt=0, le=1)
    max_depth: int = Field(4, ge=1, le=64)
    min_child_weight: float = Field(10.0, ge=0)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)


class XGBoostModel(ClassifierBase):
    """Gradient-boosted trees (XGBoost, histogram method); labels are encoded internally and
    predictions come from the fitted booster (``booster_``), the part a bundle saves."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the booster on a training window."""
        get("xgboost").check_available()
        import xgboost

        features, labels = check_training(X, y)
        self.classes_ = np.unique(labels)
        p = self.params or XGBoostParams()
        self.model_ = xgboost.XGBClassifier(
            n_estimators=p.n_estimators,
            learning_rate=p.learning_rate,
            max_depth=p.max_depth,
            min_child_weight=p.min_child_weight,
            subsample=p.subsample,
            colsample_bytree=p.colsample_bytree,
            reg_lambda=p.reg_lambda,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
        )
        self.model_.fit(features, np.searchsorted(self.classes_, labels))
        self.booster_ = self.model_.get_booster()
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities from the booster, columns in ``classes_`` order."""
        self._check_fitted()
        return class_columns(self.booster_.inplace_predict(as_matrix(X)))


def _read_booster(data: bytes, model: XGBoostModel) -> Any:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    booster.set_param({"nthread": model.n_jobs})
    return booster


def search_space(trial: Trial) -> dict[str, Any]:
    """The main XGBoost hyper-parameters for Optuna."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
    }


register(
    ModelKind(
        name="xgboost",
        summary="gradient-boosted trees (XGBoost); needs the xgboost extra",
        estimator=XGBoostModel,
        params=XGBoostParams,
        codec=BoosterCodec(
            "model.json", lambda b: bytes(b.save_raw(raw_format="json")), _read_booster
        ),
        space=search_space,
        extra="xgboost",
        requires=("xgboost",),
    )
)
