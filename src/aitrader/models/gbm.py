"""LightGBM classifier: the default model (deterministic and single-threaded unless asked)."""

from __future__ import annotations

from typing import Self

from lightgbm import LGBMClassifier

from aitrader.models.base import ArrayLike, ClassifierBase, check_training
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
        return self._fit_estimator(estimator, features, labels)
