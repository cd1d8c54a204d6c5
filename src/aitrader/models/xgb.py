"""XGBoost classifier behind the optional ``xgboost`` extra (``pip install aitrader[xgboost]``)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from aitrader.errors import ConfigError
from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.config import XGBoostParams


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError:
        raise ConfigError(
            "model kind 'xgboost' needs the xgboost package: pip install 'aitrader[xgboost]' "
            "(installs xgboost-cpu), or choose another model kind"
        ) from None
    return xgboost


class XGBoostModel(ClassifierBase):
    """Gradient-boosted trees (XGBoost, histogram method); labels are encoded internally."""

    def __init__(
        self, params: XGBoostParams | None = None, seed: int = 42, n_jobs: int = 1
    ) -> None:
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the booster on a training window."""
        xgboost = _xgboost()
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
        self.n_features_in_ = features.shape[1]
        return self
