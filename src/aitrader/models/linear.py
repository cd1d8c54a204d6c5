"""Logistic regression (multinomial, L2): a linear baseline saved as coefficient arrays."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from aitrader.frozen import Frozen
from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.codecs import AttributesCodec
from aitrader.models.kinds import ModelKind, register


class LogisticParams(Frozen):
    """L2-regularised multinomial logistic regression."""

    C: float = Field(0.1, gt=0, description="inverse regularisation strength")
    max_iter: int = Field(1000, ge=10)


class LogisticModel(ClassifierBase):
    """A linear baseline; expects scaled features (the pipeline scales them)."""

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        p = self.params or LogisticParams()
        return LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=self.seed)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the coefficients on a training window."""
        features, labels = check_training(X, y)
        return self._fit_estimator(self._estimator(), features, labels)


def _prepare(model: LogisticModel) -> None:
    model.model_ = model._estimator()


FITTED = ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_")

register(
    ModelKind(
        name="logistic",
        summary="multinomial logistic regression (L2), on scaled features",
        estimator=LogisticModel,
        params=LogisticParams,
        codec=AttributesCodec(
            ("classes_", "n_features_in_", *(f"model_.{a}" for a in FITTED)), prepare=_prepare
        ),
        space=lambda trial: {"C": trial.suggest_float("C", 1e-4, 10.0, log=True)},
    )
)
