"""Random-forest classifier (scikit-learn)."""

from __future__ import annotations

from typing import Self

from sklearn.ensemble import RandomForestClassifier

from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.config import ForestParams


class RandomForestModel(ClassifierBase):
    """Bagged decision trees; NaN features are not allowed (drop or impute upstream)."""

    def __init__(self, params: ForestParams | None = None, seed: int = 42, n_jobs: int = 1) -> None:
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the forest on a training window."""
        features, labels = check_training(X, y)
        p = self.params or ForestParams()
        estimator = RandomForestClassifier(
            n_estimators=p.n_estimators,
            max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf,
            max_features=p.max_features,
            random_state=self.seed,
            n_jobs=self.n_jobs,
        )
        return self._fit_estimator(estimator, features, labels)
