"""The model protocol (scikit-learn estimator rules) and helpers shared by implementations.

``__init__`` stores parameters only, ``fit(X, y)`` returns self, learned state ends in ``_``,
``predict_proba`` columns follow ``classes_``. Models never log to a tracker: the pipeline does.
:class:`ClassifierBase` implements the rules (``get_params``/``set_params``, so
``sklearn.base.clone`` works) without importing scikit-learn: model-kind modules stay light to
import and load their library inside ``fit``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeAlias, runtime_checkable

import numpy as np

from aitrader.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

ArrayLike: TypeAlias = "pd.DataFrame | np.ndarray"


@runtime_checkable
class Classifier(Protocol):
    """A probabilistic classifier: what the validation pipeline and the registry rely on."""

    classes_: np.ndarray

    def fit(self, X: Any, y: Any) -> Self: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...

    def predict(self, X: Any) -> np.ndarray: ...


def as_matrix(X: ArrayLike) -> np.ndarray:
    """Features as a 2-D float64 array (DataFrames lose their index, keep their column order)."""
    values = X.to_numpy(dtype=np.float64) if hasattr(X, "to_numpy") else np.asarray(X)
    if values.ndim != 2:
        raise DataError(f"features must be a 2-D table, got {values.ndim} dimension(s)")
    return values.astype(np.float64, copy=False)


def check_training(X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training set: same length, finite labels, at least two classes."""
    features = as_matrix(X)
    labels: np.ndarray = np.asarray(y).ravel()
    if features.shape[0] != labels.shape[0]:
        raise DataError(f"features have {features.shape[0]} rows but labels {labels.shape[0]}")
    if features.shape[0] == 0:
        raise DataError("cannot fit a model on zero rows")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError("labels contain NaN: drop unlabelled rows (Labels.dropna) before fitting")
    if np.unique(labels).size < 2:
        raise DataError("the training window holds a single class; widen it or change labels")
    return features, labels


def class_columns(raw: Any) -> np.ndarray:
    """A booster's probabilities as one column per class (binary boosters give P(class 1))."""
    raw = np.asarray(raw, dtype=np.float64)
    return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw


class ClassifierBase(ABC):
    """Estimator rules, a common ``predict``, and by default probabilities from a wrapped
    estimator ``model_``.

    Wrappers build their library estimator and hand it to ``_fit_estimator``; models with
    their own arithmetic (the baselines) override ``predict_proba``.
    """

    _estimator_type = "classifier"
    classes_: np.ndarray
    model_: Any

    def __init__(self, params: Any = None, seed: int = 42, n_jobs: int = 1) -> None:
        """Every kind takes its parameter model (None: the defaults), a seed and a thread count."""
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` arguments, as stored (scikit-learn's contract)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change ``__init__`` arguments (scikit-learn's contract)."""
        allowed = self._param_names()
        for name, value in params.items():
            if name not in allowed:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def context_rows(self) -> int:
        """Earlier rows each prediction reads besides its own (0: a row model; sequence kinds
        read a window of rows ending at the predicted one)."""
        return 0

    @abstractmethod
    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Learn from a training window (every kind implements it: a kind without it cannot be
        instantiated)."""

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        self._check_fitted()
        return np.asarray(self.model_.predict_proba(as_matrix(X)), dtype=np.float64)

    def _fit_estimator(self, estimator: Any, features: np.ndarray, labels: np.ndarray) -> Self:
        """Fit ``estimator`` as this model's ``model_`` and record the learned shapes."""
        self.model_ = estimator
        self.model_.fit(features, labels)
        self.classes_ = np.asarray(self.model_.classes_)
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise DataError(f"{type(self).__name__} is not fitted: call fit() first")
