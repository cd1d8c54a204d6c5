"""Probabilities → target positions: trade when the calibrated edge clears a threshold."""

from __future__ import annotations

import numpy as np


def edge(proba: np.ndarray) -> np.ndarray:
    """``P(up) - P(down)``: the last class column minus the first (classes are sorted)."""
    return np.asarray(proba[:, -1] - proba[:, 0])


def positions(proba: np.ndarray, threshold: float, allow_short: bool = True) -> np.ndarray:
    """+1 when the edge exceeds ``threshold``, -1 below ``-threshold`` (if shorting), else 0."""
    e = edge(proba)
    long = e > threshold
    short = (e < -threshold) & allow_short
    return long.astype(np.float64) - short.astype(np.float64)
