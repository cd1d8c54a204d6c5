"""Probability calibration: isotonic or Platt (sigmoid), one-vs-rest, rows renormalised.

Fit on predictions for a window strictly after the model's training window and before the
evaluation window (the pipeline guarantees it). Binary problems calibrate the positive class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self, TypeAlias

import numpy as np

from aitrader.errors import ConfigError, DataError
from aitrader.models.codecs import decode, encode

Method = Literal["isotonic", "sigmoid"]
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _EPS, 1 - _EPS)
    return np.log(clipped / (1 - clipped)).reshape(-1, 1)


class _Constant:
    """The calibration window never (or always) saw this class: predict its frequency."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def predict(self, p: np.ndarray) -> np.ndarray:
        return np.full(p.shape[0], self.rate)


class _Isotonic:
    """A fitted isotonic map: linear interpolation between its thresholds, clipped at the ends
    (what scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    @classmethod
    def fit(cls, p: np.ndarray, hit: np.ndarray) -> _Isotonic:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, hit)
        return cls(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))

    def predict(self, p: np.ndarray) -> np.ndarray:
        return np.interp(np.clip(p, self.x[0], self.x[-1]), self.x, self.y)


Map: TypeAlias = "_Constant | _Isotonic | _Platt"


class ProbabilityCalibrator:
    """Maps raw class probabilities to calibrated ones; ``y`` holds column indices 0..k-1.

    Its fitted state is plain numbers and arrays (:meth:`state`, :meth:`from_state`), so model
    bundles store it without pickle.
    """

    def __init__(self, method: Method = "isotonic") -> None:
        self.method = method

    def _fit_one(self, p: np.ndarray, hit: np.ndarray) -> Map:
        if hit.min() == hit.max():
            return _Constant(float(hit[0]))
        if self.method == "isotonic":
            return _Isotonic.fit(p, hit)
        return _Platt().fit(p, hit)

    def fit(self, proba: np.ndarray, y: np.ndarray) -> Self:
        """Fit one map per class (only the positive class for two classes)."""
        if self.method not in ("isotonic", "sigmoid"):
            raise ConfigError(f"calibration method {self.method!r}: use 'isotonic' or 'sigmoid'")
        proba, codes = np.asarray(proba, dtype=np.float64), np.asarray(y).astype(np.int64)
        if proba.ndim != 2 or proba.shape[0] != codes.shape[0] or proba.shape[0] == 0:
            raise DataError("calibrator needs a non-empty (rows × classes) table and one label/row")
        self.n_classes_ = proba.shape[1]
        columns = [1] if self.n_classes_ == 2 else range(self.n_classes_)
        self.maps_ = {k: self._fit_one(proba[:, k], (codes == k).astype(float)) for k in columns}
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (rows sum to 1)."""
        if not hasattr(self, "maps_"):
            raise DataError("calibrator is not fitted")
        proba = np.asarray(proba, dtype=np.float64)
        if self.n_classes_ == 2:
            p1 = np.clip(self.maps_[1].predict(proba[:, 1]), 0.0, 1.0)
            return np.column_stack([1.0 - p1, p1])
        out = np.column_stack([self.maps_[k].predict(proba[:, k]) for k in range(self.n_classes_)])
        out = np.clip(out, _EPS, None)
        return out / out.sum(axis=1, keepdims=True)

    def state(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        """The fitted maps as JSON; their arrays go into ``arrays`` under ``prefix``."""
        if not hasattr(self, "maps_"):
            raise DataError("calibrator is not fitted")
        maps: dict[str, Any] = {}
        for k, fitted in self.maps_.items():
            key = f"{prefix}.{k}"
            if isinstance(fitted, _Constant):
                maps[str(k)] = {"constant": fitted.rate}
            elif isinstance(fitted, _Isotonic):
                x, y = encode(fitted.x, f"{key}.x", arrays), encode(fitted.y, f"{key}.y", arrays)
                maps[str(k)] = {"isotonic": {"x": x, "y": y}}
            else:
                maps[str(k)] = {"platt": encode(fitted.coef_, f"{key}.coef", arrays)}
        return {"method": self.method, "n_classes": self.n_classes_, "maps": maps}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Self:
        """The calibrator :meth:`state` described."""
        calibrator = cls(state["method"])
        calibrator.n_classes_ = int(state["n_classes"])
        maps: dict[int, Map] = {}
        for k, spec in state["maps"].items():
            if "constant" in spec:
                maps[int(k)] = _Constant(float(spec["constant"]))
            elif "isotonic" in spec:
                xy = spec["isotonic"]
                maps[int(k)] = _Isotonic(decode(xy["x"], arrays), decode(xy["y"], arrays))
            else:
                maps[int(k)] = _Platt.from_coef(decode(spec["platt"], arrays))
        calibrator.maps_ = maps
        return calibrator


class _Platt:
    """Platt scaling ``sigmoid(a · logit(p) + b)`` by Newton's method, with Platt's smoothed
    targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` (no probability of exactly 0 or 1)."""

    def fit(self, p: np.ndarray, hit: np.ndarray) -> _Platt:
        x = np.column_stack([_logit(p).ravel(), np.ones(p.shape[0])])
        positives = hit.sum()
        negatives = hit.size - positives
        target = np.where(hit > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        w = np.array([1.0, np.log((positives + 1) / (negatives + 1))])
        loss = _cross_entropy(x @ w, target)
        for _ in range(100):
            q = _sigmoid(x @ w)
            hessian = (x.T * (q * (1 - q))) @ x + 1e-9 * np.eye(2)
            step = np.linalg.solve(hessian, x.T @ (q - target))
            scale = 1.0
            while scale > 1e-6 and _cross_entropy(x @ (w - scale * step), target) > loss:
                scale /= 2
            w = w - scale * step
            new = _cross_entropy(x @ w, target)
            if loss - new < 1e-12:
                break
            loss = new
        self.coef_ = w
        return self

    @classmethod
    def from_coef(cls, coef: np.ndarray) -> _Platt:
        platt = cls()
        platt.coef_ = np.asarray(coef, dtype=np.float64)
        return platt

    def predict(self, p: np.ndarray) -> np.ndarray:
        return _sigmoid(_logit(p).ravel() * self.coef_[0] + self.coef_[1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


def _cross_entropy(z: np.ndarray, target: np.ndarray) -> float:
    """Mean binary cross-entropy of logits ``z`` (numerically stable)."""
    return float(np.mean(np.logaddexp(0.0, z) - target * z))
