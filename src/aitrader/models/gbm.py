"""LightGBM classifier: the default model (deterministic and single-threaded unless asked)."""

from __future__ import annotations

from typing import Self

import numpy as np
from lightgbm import LGBMClassifier

from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.config import LightGBMParams


class LightGBMModel(ClassifierBase):
    """Gradient-boosted trees (LightGBM) with deterministic, row-wise training."""

    def __init__(
        self, params: LightGBMParams | None = None, seed: int = 42, n_jobs: int = 1
    ) -> None:
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the booster on a training window."""
        features, labels = check_training(X, y)
        p = self.params or LightGBMParams()
        self.model_ = LGBMClassifier(
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
        self.model_.fit(features, labels)
        self.classes_ = np.asarray(self.model_.classes_)
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        self._check_fitted()
        return np.asarray(self.model_.predict_proba(as_matrix(X)), dtype=np.float64)
