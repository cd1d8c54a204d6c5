"""Models follow the estimator rules; baselines compute what they claim; xgboost is optional."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from aitrader.errors import ConfigError, DataError
from aitrader.models import kinds
from aitrader.models.base import Classifier
from aitrader.models.baselines import MajorityModel, PersistenceModel
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model

KINDS = kinds.names()  # every registered kind follows the estimator rules


def dataset(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three classes (-1, 0, 1) driven by the first column; the last column is a move sign;
    the `lags` window of a random walk for the kinds that read one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    score = x[:, 0] + 0.5 * rng.normal(size=n)
    y = np.where(score > 0.5, 1.0, np.where(score < -0.5, -1.0, 0.0))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "trend_strength_2"])
    frame["trend_strength_2"] = np.sign(x[:, 0])
    r = rng.normal(0.0, 0.01, n + 48)
    hl = np.abs(rng.normal(0.0, 0.01, n + 48)) + 0.001
    for k in range(48):
        frame[f"lag_ret_{k}"] = r[48 - k : 48 - k + n]
        frame[f"lag_hl_{k}"] = hl[48 - k : 48 - k + n]
    return frame, y


def small(kind: str) -> ModelConfig:
    return ModelConfig(
        kind=kind,
        lightgbm={"n_estimators": 30},
        random_forest={"n_estimators": 20},
        xgboost={"n_estimators": 20},
        quantile={"n_estimators": 20},
    )


@pytest.mark.parametrize("kind", KINDS)
def test_estimator_rules(kind: str) -> None:
    X, y = dataset()
    model = make_model(small(kind))
    assert not hasattr(model, "classes_")
    assert model.fit(X, y) is model
    assert isinstance(model, Classifier)
    assert model.classes_.tolist() == [-1.0, 0.0, 1.0]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= {-1.0, 0.0, 1.0}
    again = clone(model).fit(X, y)  # parameters only in __init__: clone works
    np.testing.assert_array_equal(again.predict_proba(X), proba)  # deterministic


@pytest.mark.parametrize("kind", ["lightgbm", "random_forest", "logistic", "xgboost"])
def test_learning_models_beat_the_majority(kind: str) -> None:
    X, y = dataset(1500)
    train, test = slice(0, 1000), slice(1000, None)
    model = make_model(small(kind)).fit(X.iloc[train], y[train])
    majority = MajorityModel().fit(X.iloc[train], y[train])
    assert np.mean(model.predict(X.iloc[test]) == y[test]) > np.mean(
        majority.predict(X.iloc[test]) == y[test]
    )


def test_majority_predicts_training_frequencies() -> None:
    X = np.zeros((4, 1))
    model = MajorityModel().fit(X, np.array([1, 1, 1, 0]))
    np.testing.assert_allclose(model.predict_proba(np.zeros((2, 1))), [[0.25, 0.75]] * 2)


def test_persistence_predicts_the_last_move_with_its_hit_rate() -> None:
    X = pd.DataFrame({"x": [0.0] * 4, "trend_strength_2": [1.0, -1.0, 1.0, -1.0]})
    y = np.array([1.0, 0.0, 0.0, 0.0])  # binary: the rule is right 3 times out of 4
    model = PersistenceModel().fit(X, y)
    assert model.hit_rate_ == 0.75
    proba = model.predict_proba(pd.DataFrame({"x": [0.0, 0.0], "trend_strength_2": [2.0, -3.0]}))
    np.testing.assert_allclose(proba, [[0.25, 0.75], [0.75, 0.25]])


def test_persistence_names_its_missing_column() -> None:
    with pytest.raises(ConfigError, match="trend_strength with window=2"):
        PersistenceModel().fit(pd.DataFrame({"x": [1.0, 2.0]}), np.array([0, 1]))


def test_single_class_window_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="single class"):
        make_model(small("lightgbm")).fit(np.zeros((10, 2)), np.ones(10))


def test_unfitted_model_says_so() -> None:
    with pytest.raises(DataError, match="not fitted"):
        make_model(small("logistic")).predict_proba(np.zeros((1, 2)))


def test_missing_xgboost_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    X, y = dataset(50)
    with pytest.raises(ConfigError, match=r"pip install 'aitrader\[xgboost\]'"):
        make_model(small("xgboost")).fit(X, y)
    assert kinds.get("xgboost").describe()["installed"] is False  # `aitrader models kinds` says so


@pytest.mark.parametrize("depth", [4, None])
def test_forest_decision_rows_match_scikit_learn(depth: int | None) -> None:
    """A decision's few rows skip scikit-learn's per-tree dispatch with the same numbers; a
    pickled model rebuilds its node arrays."""
    import pickle

    X, y = dataset(900, seed=3)
    config = ModelConfig(
        kind="random_forest",
        random_forest={"n_estimators": 25, "max_depth": depth, "min_samples_leaf": 5},
    )
    model = make_model(config).fit(X.iloc[:700], y[:700])
    rows = X.iloc[700:].to_numpy()
    forest = model.model_  # type: ignore[attr-defined]
    for i in range(40):
        expected = forest.predict_proba(rows[i : i + 1])
        np.testing.assert_array_equal(model.predict_proba(rows[i : i + 1]), expected)
    np.testing.assert_array_equal(model.predict_proba(rows[:16]), forest.predict_proba(rows[:16]))
    gap = rows[:2].copy()
    gap[0, 1] = np.nan  # not finite: scikit-learn's own path (it routes missing values)
    np.testing.assert_array_equal(model.predict_proba(gap), forest.predict_proba(gap))
    again = pickle.loads(pickle.dumps(model))
    assert not hasattr(again, "nodes_")
    np.testing.assert_array_equal(again.predict_proba(rows[:1]), forest.predict_proba(rows[:1]))
