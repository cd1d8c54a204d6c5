"""Drift statistics: a bundle's training reference, PSI and KS of live values against it.

At training time each feature's distribution on the training rows, and the calibrated
P(up) distribution on the calibration slice, are summarised (:func:`drift_reference`) and stored
in the bundle: quantile bin edges with the share of rows in each bin (for the population
stability index) and 101 quantiles (the reference CDF for the Kolmogorov–Smirnov statistic,
linear between them). Live values are compared with that summary (:func:`drift_report`):

* PSI ``Σ (a − e)·ln(a / e)`` over the reference bins (shares floored at 1e-4);
* KS ``sup |F_ref(x) − F_live(x)|``, the one-sample statistic against the reference CDF.

Pure functions on arrays; the job that reads a ledger lives in :mod:`aitrader.ops.drift`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

REFERENCE_VERSION = 1
BINS = 10
QUANTILES = 101
FLOOR = 1e-4
Level = Literal["ok", "warn", "alert"]
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2}


def summarise(values: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Bin edges (reference quantiles), the share of values per bin and 101 quantiles."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"edges": [], "proportions": [1.0], "quantiles": [], "n": 0}
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
    return {
        "edges": edges.tolist(),
        "proportions": (counts / x.size).tolist(),
        "quantiles": np.quantile(x, np.linspace(0, 1, QUANTILES)).tolist(),
        "n": int(x.size),
    }


def drift_reference(features: pd.DataFrame, p_up: np.ndarray) -> dict[str, Any]:
    """The reference a bundle stores: every feature column's summary (training rows) and the
    predicted P(up)'s (calibration slice)."""
    return {
        "version": REFERENCE_VERSION,
        "features": {str(c): summarise(features[c].to_numpy()) for c in features.columns},
        "prediction": summarise(np.asarray(p_up)),
    }


def psi(reference: Mapping[str, Any], values: np.ndarray) -> float:
    """Population stability index of ``values`` over the reference's bins (NaN: no values)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.maximum(np.asarray(reference["proportions"], dtype=np.float64), FLOOR)
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=expected.size)
    actual = np.maximum(counts / x.size, FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: Mapping[str, Any], values: np.ndarray) -> float:
    """The one-sample KS statistic of ``values`` against the reference CDF (NaN: no values)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    quantiles = np.asarray(reference["quantiles"], dtype=np.float64)
    if x.size == 0 or quantiles.size == 0:
        return float("nan")
    cdf = np.interp(x, quantiles, np.linspace(0, 1, quantiles.size), left=0.0, right=1.0)
    n = x.size
    above = np.arange(1, n + 1) / n - cdf
    below = cdf - np.arange(n) / n
    return float(max(above.max(), below.max(), 0.0))


def _level(value: float, warn: float, alert: float) -> Level:
    if not np.isfinite(value) or value < warn:
        return "ok"
    return "alert" if value >= alert else "warn"


def worst(levels: list[Level]) -> Level:
    return max(levels, key=lambda v: _RANK[v], default="ok")


@dataclass(frozen=True)
class Thresholds:
    psi_warn: float
    psi_alert: float
    ks_warn: float
    ks_alert: float


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float
    ks: float
    level: Level


@dataclass(frozen=True)
class DriftReport:
    """Drift of ``samples`` live decisions: per feature, of the predicted P(up), overall."""

    samples: int
    features: list[FeatureDrift]
    prediction_psi: float
    prediction_level: Level
    level: Level

    def worst_features(self, n: int = 3) -> list[FeatureDrift]:
        ranked = sorted(self.features, key=lambda f: (-_RANK[f.level], -np.nan_to_num(f.psi)))
        return [f for f in ranked if f.level != "ok"][:n]

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "samples": self.samples,
            "level": self.level,
            "prediction_psi": num(self.prediction_psi),
            "prediction_level": self.prediction_level,
            "features": [
                {"name": f.name, "psi": num(f.psi), "ks": num(f.ks), "level": f.level}
                for f in self.features
            ],
        }


def drift_report(
    reference: Mapping[str, Any], features: pd.DataFrame, p_up: np.ndarray, limits: Thresholds
) -> DriftReport:
    """Live feature rows and P(up) values against a bundle's reference."""
    found = []
    for name, summary in reference["features"].items():
        values = features[name].to_numpy() if name in features else np.empty(0)
        p, k = psi(summary, values), ks(summary, values)
        level = worst(
            [
                _level(p, limits.psi_warn, limits.psi_alert),
                _level(k, limits.ks_warn, limits.ks_alert),
            ]
        )
        found.append(FeatureDrift(name, p, k, level))
    prediction = psi(reference["prediction"], p_up)
    prediction_level = _level(prediction, limits.psi_warn, limits.psi_alert)
    overall = worst([f.level for f in found] + [prediction_level])
    return DriftReport(len(features), found, prediction, prediction_level, overall)
