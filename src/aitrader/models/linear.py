"""Logistic-regression baseline (multinomial, L2)."""

from __future__ import annotations

from typing import Self

from sklearn.linear_model import LogisticRegression

from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.config import LogisticParams


class LogisticModel(ClassifierBase):
    """A linear baseline; expects scaled features (the pipeline scales them)."""

    def __init__(self, params: LogisticParams | None = None, seed: int = 42) -> None:
        self.params = params
        self.seed = seed

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the coefficients on a training window."""
        features, labels = check_training(X, y)
        p = self.params or LogisticParams()
        estimator = LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=self.seed)
        return self._fit_estimator(estimator, features, labels)
