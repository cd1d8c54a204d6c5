"""Logistic-regression baseline (multinomial, L2)."""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.linear_model import LogisticRegression

from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
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
        self.model_ = LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=self.seed)
        self.model_.fit(features, labels)
        self.classes_ = np.asarray(self.model_.classes_)
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        self._check_fitted()
        return np.asarray(self.model_.predict_proba(as_matrix(X)), dtype=np.float64)
