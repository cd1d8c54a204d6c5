"""Baselines every model must beat: the majority class (climatology) and persistence.

Both read raw (unscaled) features and are saved as JSON + arrays.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field

from aitrader.errors import ConfigError, DataError
from aitrader.frozen import Frozen
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.codecs import AttributesCodec
from aitrader.models.kinds import ModelKind, register


class MajorityParams(Frozen):
    """The majority baseline has no parameters."""


class PersistenceParams(Frozen):
    """Which feature carries the last bar's move."""

    column: str = Field(
        "trend_strength_2",
        min_length=1,
        description="a column whose sign is the last bar's move",
    )


class MajorityModel(ClassifierBase):
    """Predicts the training class frequencies for every row (climatology)."""

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Learn the class frequencies of the training window."""
        features, labels = check_training(X, y)
        self.classes_, counts = np.unique(labels, return_counts=True)
        self.prior_ = counts / counts.sum()
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """The training frequencies, repeated for each row."""
        self._check_fitted()
        return np.tile(self.prior_, (as_matrix(X).shape[0], 1))


class PersistenceModel(ClassifierBase):
    """Tomorrow moves like today: predicts the class of the last bar's return sign.

    ``params.column`` names a feature whose sign is the last bar's move, e.g.
    ``trend_strength`` with ``window=2`` (exactly ``sign(close[t] - close[t-1])``). The predicted
    class gets the rule's training hit rate; the rest is shared by training frequency.
    """

    def _column_index(self, X: ArrayLike) -> int:
        column = (self.params or PersistenceParams()).column
        names = [str(c) for c in getattr(X, "columns", [])]
        if column not in names:
            raise ConfigError(
                f"persistence baseline needs the feature column {column!r} "
                "(add feature trend_strength with window=2: the sign of the last move)"
            )
        return names.index(column)

    def _rule(self, last: np.ndarray) -> np.ndarray:
        """Column index (into ``classes_``) of the class the last move points to."""
        up, down = len(self.classes_) - 1, 0
        flat = self.neutral_ if self.neutral_ is not None else self.majority_
        return np.where(last > 0, up, np.where(last < 0, down, flat))

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Learn class frequencies and the rule's hit rate on the training window."""
        features, labels = check_training(X, y)
        self.column_index_ = self._column_index(X)
        self.classes_, counts = np.unique(labels, return_counts=True)
        self.prior_ = counts / counts.sum()
        self.majority_ = int(np.argmax(counts))
        zero = np.flatnonzero(self.classes_ == 0)
        self.neutral_ = int(zero[0]) if len(self.classes_) == 3 and zero.size else None
        encoded = np.searchsorted(self.classes_, labels)
        self.hit_rate_ = float(np.mean(self._rule(features[:, self.column_index_]) == encoded))
        self.n_features_in_ = features.shape[1]
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Hit rate on the predicted class, the remainder spread by training frequency."""
        self._check_fitted()
        features = as_matrix(X)
        if features.shape[1] != self.n_features_in_:
            raise DataError(f"expected {self.n_features_in_} feature columns")
        chosen = self._rule(features[:, self.column_index_])
        others = np.tile(self.prior_, (features.shape[0], 1))
        others[np.arange(len(chosen)), chosen] = 0.0
        others *= (1.0 - self.hit_rate_) / others.sum(axis=1, keepdims=True)
        others[np.arange(len(chosen)), chosen] = self.hit_rate_
        return others


PERSISTENCE_STATE = ("classes_", "prior_", "majority_", "neutral_", "hit_rate_", "column_index_")

register(
    ModelKind(
        name="majority",
        summary="baseline: the training class frequencies for every bar",
        estimator=MajorityModel,
        params=MajorityParams,
        codec=AttributesCodec(("classes_", "prior_", "n_features_in_")),
        raw_features=True,
    )
)
register(
    ModelKind(
        name="persistence",
        summary="baseline: the next bar moves like the last one (needs trend_strength_2)",
        estimator=PersistenceModel,
        params=PersistenceParams,
        codec=AttributesCodec((*PERSISTENCE_STATE, "n_features_in_")),
        raw_features=True,
    )
)
