"""Out-of-sample metrics: classification quality, calibration, and the Sharpe ratio.

Pure functions on arrays. ``y`` holds class column indices ``0..k-1`` (see :func:`encode`);
``proba`` is rows × classes. Trading P&L comes from the engine (``validation.evaluation``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from aitrader.errors import DataError

_EPS = 1e-15


def encode(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class values → column indices into ``classes``; DataError for an unknown class."""
    codes = np.searchsorted(classes, labels)
    codes = np.clip(codes, 0, len(classes) - 1)
    if not np.array_equal(classes[codes], labels):
        raise DataError(f"labels contain classes outside {classes.tolist()}")
    return codes.astype(np.int64)


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(balanced_accuracy_score(y, np.argmax(proba, axis=1)))


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at 1e-15)."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], _EPS, 1.0))))


def brier(y: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score: mean over rows of the summed squared error to the one-hot."""
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def brier_skill(y: np.ndarray, proba: np.ndarray, reference: np.ndarray) -> float:
    """``1 - Brier / Brier(reference)``; > 0 beats the reference (e.g. training climatology)."""
    return 1.0 - brier(y, proba) / brier(y, reference)


def reliability(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Top-label reliability curve: per confidence bin, mean confidence, accuracy and count."""
    confidence = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, minlength=bins) / count
        acc = np.bincount(which, correct, minlength=bins) / count
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "confidence": conf,
            "accuracy": acc,
            "count": count,
        }
    )


def ece(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-label confidence (count-weighted |acc - conf|)."""
    curve = reliability(y, proba, bins)
    used = curve["count"] > 0
    gaps = (curve["accuracy"] - curve["confidence"]).abs()[used]
    return float((gaps * curve["count"][used]).sum() / len(y))


def auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC (binary: positive class; multi-class: macro one-vs-rest); NaN if undefined."""
    present = np.unique(y)
    if present.size < 2:
        return math.nan
    if proba.shape[1] == 2:
        return float(roc_auc_score(y == 1, proba[:, 1]))
    scores = [roc_auc_score(y == k, proba[:, k]) for k in present]
    return float(np.mean(scores))


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, climatology: np.ndarray, bins: int = 10
) -> dict[str, float]:
    """Every classification metric; ``climatology`` is the reference probability per row."""
    majority = np.bincount(y, minlength=proba.shape[1]).max() / len(y)
    return {
        "accuracy": accuracy(y, proba),
        "balanced_accuracy": balanced_accuracy(y, proba),
        "majority_rate": float(majority),
        "log_loss": log_loss(y, proba),
        "brier": brier(y, proba),
        "brier_climatology": brier(y, climatology),
        "brier_skill": brier_skill(y, proba, climatology),
        "ece": ece(y, proba, bins),
        "auc": auc(y, proba),
        "n": float(len(y)),
    }


def sharpe(returns: np.ndarray, periods_per_year: float = 1.0) -> float:
    """Mean over standard deviation (ddof 1), times ``sqrt(periods_per_year)``; 0 if flat."""
    if returns.size < 2:
        return 0.0
    sd = float(np.std(returns, ddof=1))
    return 0.0 if sd == 0 else float(np.mean(returns) / sd * math.sqrt(periods_per_year))


INTERVAL_LEVELS = (80, 95)


def interval_metrics(outputs: pd.DataFrame, realised: np.ndarray) -> dict[str, float]:
    """Coverage (share of rows whose ``realised`` value lies in ``[ret_loC, ret_hiC]``) and median
    width of every interval level ``C`` the ``outputs`` table has; rows with a non-finite
    realised value or bound are left out. Empty for a table without intervals."""
    out: dict[str, float] = {}
    for level in INTERVAL_LEVELS:
        lo_name, hi_name = f"ret_lo{level}", f"ret_hi{level}"
        if lo_name not in outputs or hi_name not in outputs:
            continue
        lo, hi = outputs[lo_name].to_numpy(float), outputs[hi_name].to_numpy(float)
        ok = np.isfinite(realised) & np.isfinite(lo) & np.isfinite(hi)
        if not ok.any():
            continue
        inside = (realised[ok] >= lo[ok]) & (realised[ok] <= hi[ok])
        out[f"coverage_{level}"] = float(inside.mean())
        out[f"width_{level}"] = float(np.median(hi[ok] - lo[ok]))
    return out
