"""Random forest (scikit-learn). scikit-learn trees have no safe file format, so bundles hold a
pickle and load only with ``--trust-bundle``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import Field

from aitrader.frozen import Frozen
from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.codecs import PickleCodec
from aitrader.models.kinds import ModelKind, register

if TYPE_CHECKING:
    from optuna.trial import Trial


class ForestParams(Frozen):
    """Random-forest hyper-parameters."""

    n_estimators: int = Field(200, ge=1, le=10_000)
    max_depth: int | None = Field(6, ge=1, le=256)
    min_samples_leaf: int = Field(50, ge=1)
    max_features: float = Field(0.3, gt=0, le=1, description="fraction of columns per split")


class RandomForestModel(ClassifierBase):
    """Bagged decision trees; NaN features are not allowed (drop or impute upstream)."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the forest on a training window."""
        from sklearn.ensemble import RandomForestClassifier

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


def search_space(trial: Trial) -> dict[str, Any]:
    """The forest's size, depth and leaf/column sampling for Optuna."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 16),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 500, log=True),
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
    }


register(
    ModelKind(
        name="random_forest",
        summary="bagged decision trees (scikit-learn); bundles need --trust-bundle",
        estimator=RandomForestModel,
        params=ForestParams,
        codec=PickleCodec(),
        space=search_space,
    )
)
