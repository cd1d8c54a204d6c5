"""Random forest (scikit-learn). scikit-learn trees have no safe file format, so bundles hold a
pickle and load only with ``--trust-bundle``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import Field

from aitrader.frozen import Frozen
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
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


FEW_ROWS = 16  # up to this many rows are walked through every tree at once (a decision's rows)


class ForestNodes:
    """A fitted forest's trees as padded node arrays (tree × node), walked for all trees at once.

    For the one row of a per-bar decision, scikit-learn dispatches every tree separately through
    joblib and its warning filters (~0.1 ms a tree, ~30 ms for 200 trees on a busy core); here
    the depth loop advances every tree together. Same arithmetic as scikit-learn: features cast
    to float32 and compared with the float64 thresholds, each leaf's class fractions added in tree
    order, then divided by the number of trees.
    """

    def __init__(self, trees: list[Any], classes: int) -> None:
        width = max(t.node_count for t in trees)
        shape = (len(trees), width)
        self.left = np.full(shape, -1, dtype=np.intp)
        self.right = np.full(shape, -1, dtype=np.intp)
        self.feature = np.zeros(shape, dtype=np.intp)
        self.threshold = np.zeros(shape, dtype=np.float64)
        self.value = np.zeros((*shape, classes), dtype=np.float64)
        for k, tree in enumerate(trees):
            n = tree.node_count
            self.left[k, :n], self.right[k, :n] = tree.children_left, tree.children_right
            self.feature[k, :n] = np.maximum(tree.feature, 0)
            self.threshold[k, :n] = tree.threshold
            self.value[k, :n] = tree.value[:, 0, :classes]  # class fractions per node
        self.trees = np.arange(len(trees))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of the rows of ``X`` (finite values), as the forest gives them."""
        x = np.asarray(X, dtype=np.float32).astype(np.float64)
        out = np.empty((x.shape[0], self.value.shape[2]))
        for row in range(x.shape[0]):
            node = np.zeros(self.trees.size, dtype=np.intp)
            while True:
                left = self.left[self.trees, node]
                inner = left >= 0
                if not inner.any():
                    break
                here = x[row, self.feature[self.trees, node]] <= self.threshold[self.trees, node]
                step = np.where(here, left, self.right[self.trees, node])
                node = np.where(inner, step, node)
            out[row] = np.cumsum(self.value[self.trees, node], axis=0)[-1] / self.trees.size
        return out


class RandomForestModel(ClassifierBase):
    """Bagged decision trees; NaN features are not allowed (drop or impute upstream)."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("nodes_", None)  # rebuilt from the trees on first use
        return state

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities; a few finite rows (a decision) skip scikit-learn's per-tree
        dispatch (:class:`ForestNodes`, the same numbers)."""
        self._check_fitted()
        features = as_matrix(X)
        if features.shape[0] > FEW_ROWS or not np.isfinite(features).all():
            return super().predict_proba(features)
        nodes = getattr(self, "nodes_", None)
        if nodes is None:
            trees = [e.tree_ for e in self.model_.estimators_]
            nodes = self.nodes_ = ForestNodes(trees, len(self.classes_))
        return nodes.predict_proba(features)

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
