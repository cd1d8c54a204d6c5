"""A fitted feature scaler: learn centre and scale on a training window, apply them anywhere.

Follows scikit-learn's estimator rules (``__init__`` stores parameters, ``fit`` returns self,
learned state ends in ``_``) without depending on it. Statistics ignore NaN. Fitting on the
training window only is what keeps scaling free of look-ahead.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from aitrader.errors import ConfigError, DataError

Method = Literal["standard", "robust"]


class FeatureScaler:
    """Centre and scale each column: ``standard`` (mean, std) or ``robust`` (median, IQR).

    Columns with zero or undefined spread get a scale of 1 (centred only). ``clip`` optionally
    bounds the scaled values to ``[-clip, clip]``.
    """

    def __init__(self, method: Method = "standard", clip: float | None = None) -> None:
        self.method = method
        self.clip = clip

    def _validate(self) -> None:
        if self.method not in ("standard", "robust"):
            raise ConfigError(f"scaler method {self.method!r}: use 'standard' or 'robust'")
        if self.clip is not None and not self.clip > 0:
            raise ConfigError(f"scaler clip {self.clip!r}: must be positive")

    @staticmethod
    def _values(x: pd.DataFrame | np.ndarray) -> np.ndarray:
        values = x.to_numpy(dtype=np.float64) if isinstance(x, pd.DataFrame) else np.asarray(x)
        if values.ndim != 2:
            raise DataError(f"scaler expects a 2-D table, got {values.ndim} dimension(s)")
        return values.astype(np.float64, copy=False)

    def fit(self, x: pd.DataFrame | np.ndarray) -> FeatureScaler:
        """Learn ``center_`` and ``scale_`` per column from ``x`` (the training window)."""
        self._validate()
        values = self._values(x)
        if values.shape[0] == 0:
            raise DataError("cannot fit a scaler on zero rows")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.method == "standard":
                center = np.nanmean(values, axis=0)
                scale = np.nanstd(values, axis=0)
            else:
                q1, center, q3 = np.nanpercentile(values, [25.0, 50.0, 75.0], axis=0)
                scale = q3 - q1
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.center_ = np.where(np.isfinite(center), center, 0.0)
        self.scale_ = scale
        self.n_features_in_ = values.shape[1]
        self.feature_names_in_ = (
            np.asarray([str(c) for c in x.columns], dtype=object)
            if isinstance(x, pd.DataFrame)
            else None
        )
        return self

    def _check_fitted(self, values: np.ndarray) -> None:
        if not hasattr(self, "scale_"):
            raise DataError("scaler is not fitted: call fit() on the training window first")
        if values.shape[1] != self.n_features_in_:
            raise DataError(
                f"scaler was fitted on {self.n_features_in_} columns, got {values.shape[1]}"
            )

    def _wrap(self, x: pd.DataFrame | np.ndarray, out: np.ndarray) -> pd.DataFrame | np.ndarray:
        if isinstance(x, pd.DataFrame):
            if self.feature_names_in_ is not None and list(x.columns) != list(
                self.feature_names_in_
            ):
                raise DataError("scaler columns differ from the ones it was fitted on")
            return pd.DataFrame(out, index=x.index, columns=x.columns)
        return out

    def transform(self, x: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """Scale ``x`` with the fitted statistics (same type out as in)."""
        values = self._values(x)
        self._check_fitted(values)
        out = (values - self.center_) / self.scale_
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return self._wrap(x, out)

    def fit_transform(self, x: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """Undo :meth:`transform` (exact unless values were clipped)."""
        values = self._values(x)
        self._check_fitted(values)
        return self._wrap(x, values * self.scale_ + self.center_)
