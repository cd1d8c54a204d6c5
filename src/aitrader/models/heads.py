"""A small classifier head the agents put on their own features: logistic regression or a
scikit-learn MLP, fitted on the training window, predicted from its weight arrays.

The fitted head is plain arrays (input standardisation, one weight matrix and bias per layer),
so a bundle stores it in ``.npz`` and predictions after loading are bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from aitrader.errors import DataError


def rowdot(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w`` computed row by row in a fixed order (BLAS gives a single row and a batch
    different last bits; a per-bar prediction must equal the batch one exactly)."""
    return np.asarray((a[:, :, None] * w[None, :, :]).sum(axis=1))


@dataclass(frozen=True)
class HeadConfig:
    """``hidden`` units (0: logistic regression), L2 strength ``alpha``, iterations, seed."""

    hidden: int = 0
    alpha: float = 1e-3
    max_iter: int = 300
    seed: int = 42


@dataclass(frozen=True)
class Head:
    """A fitted head: ``classes``, input ``mean``/``scale`` and the layers' weights."""

    classes: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def predict_proba(self, Z: np.ndarray) -> np.ndarray:
        """Class probabilities (columns in ``classes`` order); ReLU hidden layers."""
        a = (np.asarray(Z, dtype=np.float64) - self.mean) / self.scale
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            a = np.maximum(rowdot(a, w) + b, 0.0)
        z = rowdot(a, self.weights[-1]) + self.biases[-1]
        if z.shape[1] == 1:
            p = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
            return np.column_stack([1.0 - p, p])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The head as named arrays (for a bundle's ``.npz``)."""
        out = {f"{prefix}.classes": self.classes, f"{prefix}.mean": self.mean}
        out[f"{prefix}.scale"] = self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f"{prefix}.w{i}"], out[f"{prefix}.b{i}"] = w, b
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Head:
        """The head :meth:`arrays` wrote."""
        layers = sum(1 for k in arrays if k.startswith(f"{prefix}.w"))
        return cls(
            np.asarray(arrays[f"{prefix}.classes"]),
            np.asarray(arrays[f"{prefix}.mean"]),
            np.asarray(arrays[f"{prefix}.scale"]),
            tuple(np.asarray(arrays[f"{prefix}.w{i}"]) for i in range(layers)),
            tuple(np.asarray(arrays[f"{prefix}.b{i}"]) for i in range(layers)),
        )


def binary_head(Z: np.ndarray, hit: np.ndarray, config: HeadConfig) -> Head:
    """A head for P(hit) (classes 0, 1); constant at the observed rate when the window holds
    a single outcome."""
    hit = np.asarray(hit).astype(np.int64)
    if np.unique(hit).size > 1:
        return fit_head(Z, hit, config)
    rate = min(max(float(hit.mean()) if hit.size else 0.0, 1e-6), 1 - 1e-6)
    d = np.asarray(Z).shape[1]
    bias = np.array([np.log(rate / (1 - rate))])
    return Head(np.array([0, 1]), np.zeros(d), np.ones(d), (np.zeros((d, 1)),), (bias,))


def fit_head(Z: np.ndarray, y: np.ndarray, config: HeadConfig) -> Head:
    """Fit a logistic (``hidden`` 0) or one-hidden-layer MLP head on standardised ``Z``."""
    Z = np.asarray(Z, dtype=np.float64)
    keep = np.isfinite(Z).all(axis=1)
    Z, y = Z[keep], np.asarray(y)[keep]
    if Z.shape[0] == 0 or np.unique(y).size < 2:
        raise DataError("the agent's head needs finite rows of at least two classes to fit")
    mean = Z.mean(axis=0)
    scale = Z.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    X = (Z - mean) / scale
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    if config.hidden == 0:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1.0 / max(config.alpha * len(X), 1e-12), max_iter=config.max_iter)
        lr.fit(X, y)
        weights, biases = (np.asarray(lr.coef_).T.copy(),), (np.asarray(lr.intercept_).copy(),)
        classes = np.asarray(lr.classes_)
    else:
        from sklearn.neural_network import MLPClassifier

        mlp = MLPClassifier(
            hidden_layer_sizes=(config.hidden,),
            alpha=config.alpha,
            max_iter=config.max_iter,
            random_state=config.seed,
            early_stopping=False,
        )
        mlp.fit(X, y)
        weights = tuple(np.asarray(w) for w in mlp.coefs_)
        biases = tuple(np.asarray(b) for b in mlp.intercepts_)
        classes = np.asarray(mlp.classes_)
    return Head(classes, mean, scale, weights, biases)
