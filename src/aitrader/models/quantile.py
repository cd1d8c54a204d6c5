"""Magnitude and intervals: next-bar return quantiles (LightGBM quantile objective) with
split-conformal intervals.

Fit on the training window, which is cut in two: the quantile boosters learn on its first part;
after a purge gap of ``purge`` rows, the last ``calibration`` fraction is the conformal slice.
There the conformalised-quantile-regression score ``max(lo − r, r − hi)`` of each interval is
computed and its ``⌈(n + 1)·c⌉ / n`` empirical quantile becomes the widening that gives coverage
``c`` (80 % and 95 %) on exchangeable data. The next-bar log return of a training row is read
from the next training row (the ``lags`` feature), never from outside the window.

Outputs (:meth:`QuantileModel.outputs`, per bar ``t``, about the log return of bar ``t + 1``):
``ret_q50`` (the median), ``ret_lo80`` / ``ret_hi80`` and ``ret_lo95`` / ``ret_hi95`` (the
conformal intervals). Direction probabilities come from a logistic head on the predicted
quantiles.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import Field

from aitrader.errors import DataError
from aitrader.frozen import Frozen
from aitrader.models import lagged
from aitrader.models.base import ArrayLike, ClassifierBase, as_matrix, check_training
from aitrader.models.codecs import StateCodec, json_bytes, npz_bytes, read_npz
from aitrader.models.heads import Head, HeadConfig, fit_head
from aitrader.models.kinds import ModelKind, register

if TYPE_CHECKING:
    import pandas as pd

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
COVERAGES = {80: (0.1, 0.9), 95: (0.025, 0.975)}
OUTPUTS = ("ret_q50", "ret_lo80", "ret_hi80", "ret_lo95", "ret_hi95")


class QuantileParams(Frozen):
    """The boosters' size and the conformal slice at the end of the training window."""

    n_estimators: int = Field(200, ge=1, le=100_000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2, le=4096)
    min_child_samples: int = Field(200, ge=1)
    calibration: float = Field(0.25, gt=0, lt=1, description="conformal share of the window")
    purge: int = Field(48, ge=0, description="rows dropped between fit and conformal slice")


def conformal_widening(lo: np.ndarray, hi: np.ndarray, r: np.ndarray, coverage: float) -> float:
    """Split-conformal widening of ``[lo, hi]`` for ``coverage``: the ``⌈(n+1)c⌉``-th smallest
    score ``max(lo − r, r − hi)`` (infinite when the slice is too small for that coverage)."""
    scores = np.sort(np.maximum(lo - r, r - hi))
    rank = math.ceil((scores.size + 1) * coverage)
    return float(scores[rank - 1]) if rank <= scores.size else math.inf


class QuantileModel(ClassifierBase):
    """Quantile boosters + split-conformal widenings; see the module docstring."""

    def _boosters(self, X: np.ndarray, r: np.ndarray) -> list[Any]:
        from lightgbm import LGBMRegressor

        p = self.params or QuantileParams()
        boosters = []
        for level in LEVELS:
            reg = LGBMRegressor(
                objective="quantile",
                alpha=level,
                n_estimators=p.n_estimators,
                learning_rate=p.learning_rate,
                num_leaves=p.num_leaves,
                min_child_samples=p.min_child_samples,
                random_state=self.seed,
                n_jobs=self.n_jobs,
                deterministic=True,
                force_row_wise=True,
                verbose=-1,
            )
            boosters.append(reg.fit(X, r).booster_)
        return boosters

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Quantile boosters on the first part of the window, conformal widenings on its end."""
        features, labels = check_training(X, y)
        p = self.params or QuantileParams()
        ret = lagged.window(X, lagged.column_indices(X, lagged.RETURN, 2, "quantile"))
        target = lagged.next_bar(ret)
        n = features.shape[0]
        cut = n - max(int(n * p.calibration), 1)
        fit_rows = np.flatnonzero(np.isfinite(target[: max(cut - p.purge, 0)]))
        cal_rows = cut + np.flatnonzero(np.isfinite(target[cut:]))
        if fit_rows.size < 100 or cal_rows.size < 40:
            raise DataError(
                f"quantile: {fit_rows.size} fitting and {cal_rows.size} conformal rows; "
                "needs at least 100 and 40 (widen the training window)"
            )
        self.boosters_ = self._boosters(features[fit_rows], target[fit_rows])
        q = self.quantiles(features[cal_rows])
        widen = [
            conformal_widening(
                q[:, LEVELS.index(a)], q[:, LEVELS.index(b)], target[cal_rows], c / 100
            )
            for c, (a, b) in COVERAGES.items()
        ]
        self.widening_ = np.asarray(widen, dtype=np.float64)
        self.head_ = fit_head(self.quantiles(features), labels, HeadConfig(seed=self.seed))
        self.classes_ = self.head_.classes
        self.n_features_in_ = features.shape[1]
        return self

    def quantiles(self, features: np.ndarray) -> np.ndarray:
        """Raw predicted quantiles at :data:`LEVELS`, sorted per row (no crossing)."""
        raw = np.column_stack(
            [b.predict(features, num_threads=self.n_jobs) for b in self.boosters_]
        )
        return np.sort(raw, axis=1)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Direction probabilities from the head on the predicted quantiles."""
        self._check_fitted()
        return self.head_.predict_proba(self.quantiles(as_matrix(X)))

    def outputs(self, X: ArrayLike) -> pd.DataFrame:
        """``ret_q50`` and the conformal 80 % / 95 % intervals of the next log return."""
        import pandas as pd

        self._check_fitted()
        q = self.quantiles(as_matrix(X))
        columns = [q[:, LEVELS.index(0.5)]]
        for (a, b), w in zip(COVERAGES.values(), self.widening_, strict=True):
            columns += [q[:, LEVELS.index(a)] - w, q[:, LEVELS.index(b)] + w]
        return pd.DataFrame(np.column_stack(columns), columns=list(OUTPUTS))

    def state_files(self) -> dict[str, bytes]:
        """Each booster in LightGBM's text format, the widenings and head as JSON + ``.npz``."""
        files = {
            f"quantile_{i}.txt": b.model_to_string().encode() for i, b in enumerate(self.boosters_)
        }
        meta = {"widening": self.widening_.tolist(), "n_features_in": int(self.n_features_in_)}
        files["quantile.json"] = json_bytes(meta)
        files["quantile.npz"] = npz_bytes(self.head_.arrays("head"))
        return files

    def load_state(self, files: Mapping[str, bytes]) -> None:
        """Restore what :meth:`state_files` wrote."""
        from lightgbm import Booster

        self.boosters_ = [
            Booster(model_str=files[f"quantile_{i}.txt"].decode()) for i in range(len(LEVELS))
        ]
        meta: dict[str, Any] = json.load(io.BytesIO(files["quantile.json"]))
        self.widening_ = np.asarray(meta["widening"], dtype=np.float64)
        self.head_ = Head.from_arrays(read_npz(files["quantile.npz"]), "head")
        self.classes_ = self.head_.classes
        self.n_features_in_ = int(meta["n_features_in"])


register(
    ModelKind(
        name="quantile",
        summary="magnitude: next-bar return quantiles (LightGBM) with split-conformal 80/95 % "
        "intervals (reads the `lags` window)",
        estimator=QuantileModel,
        params=QuantileParams,
        codec=StateCodec(),
        features=lambda _p: [{"name": "lags", "params": {"lags": lagged.DEFAULT_LAGS}}],
        raw_features=True,
    )
)
