"""The per-row bar window the sequence agents read: the ``lags`` feature's columns.

A model sees one feature row per bar, and the per-bar strategy predicts from the last row alone,
so an agent that filters a sequence (the HMM's forward pass, the GARCH variance recursion) runs
over the window the row itself carries: ``lag_ret_k`` / ``lag_hl_k``, the log return and log
high-low range of bar ``t - k`` (the ``lags`` feature). The prediction at bar ``t`` is then a
function of bars ``≤ t`` only, identical in batch and bar by bar, whatever rows are predicted
with it.

Training targets about the next bar (its return, its range) are read from the next training
row when that row is the next bar (its ``lag_*_1`` equals this row's ``lag_*_0``), never from
bars outside the training window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aitrader.errors import ConfigError
from aitrader.models.base import ArrayLike

RETURN = "ret"
RANGE = "hl"
DEFAULT_LAGS = 48


def needs(field: str) -> Callable[[Any], list[dict[str, Any]]]:
    """A kind's required features: the ``lags`` window as long as its ``field`` parameter."""
    return lambda params: [{"name": "lags", "params": {"lags": int(getattr(params, field))}}]


def columns(field: str, lags: int) -> list[str]:
    """The feature columns of ``field`` (``ret`` or ``hl``), oldest bar first."""
    return [f"lag_{field}_{k}" for k in range(lags - 1, -1, -1)]


def column_indices(X: ArrayLike, field: str, lags: int, kind: str) -> list[int]:
    """Positions of the ``lags`` window columns in ``X``; ConfigError naming the missing
    feature otherwise."""
    wanted = columns(field, lags)
    given = getattr(X, "columns", None)
    position = {} if given is None else {str(c): i for i, c in enumerate(given.tolist())}
    found = [position.get(c, -1) for c in wanted]
    if -1 in found:
        raise ConfigError(
            f"model kind {kind!r} reads the last {lags} bars from the `lags` feature, but the "
            f"feature columns lack {wanted[found.index(-1)]}: add "
            f"`{{name: lags, params: {{lags: {lags}}}}}` (or more lags) to features.extra"
        )
    return found


def window(X: ArrayLike, indices: list[int]) -> np.ndarray:
    """The ``(rows, lags)`` window at ``indices`` (oldest bar first) as float64."""
    values = X.to_numpy(dtype=np.float64) if hasattr(X, "to_numpy") else np.asarray(X)
    return np.ascontiguousarray(values[:, indices], dtype=np.float64)


def windows(X: ArrayLike, lags: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(returns, ranges)`` windows, each ``(rows, lags)``, oldest bar first."""
    ret = window(X, column_indices(X, RETURN, lags, kind))
    return ret, window(X, column_indices(X, RANGE, lags, kind))


def next_bar(values: np.ndarray) -> np.ndarray:
    """For a ``(rows, lags)`` window: each row's next-bar value (the next row's newest one)
    where the next row is the following bar, NaN where it is not (a gap) and for the last row."""
    out = np.full(values.shape[0], np.nan)
    if values.shape[0] > 1:
        follows = values[1:, -2] == values[:-1, -1]
        out[:-1] = np.where(follows, values[1:, -1], np.nan)
    return out


def segments(values: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive bars among the rows (for a sequence fit)."""
    if values.shape[0] == 0:
        return []
    breaks = np.flatnonzero(values[1:, -2] != values[:-1, -1]) + 1
    edges = np.r_[0, breaks, values.shape[0]]
    return [int(n) for n in np.diff(edges)]


def standardise(values: np.ndarray, mean: Any, scale: Any) -> np.ndarray:
    """``(values - mean) / scale`` (element-wise, so each row's result is independent of the
    others)."""
    return np.asarray((values - mean) / scale, dtype=np.float64)
