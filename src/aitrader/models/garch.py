"""The volatility agent: a GARCH(1,1) forecast of next-bar σ with a small head on its residuals.

Fit on the training window: the GARCH parameters with the GARCH feature's own fit
(:func:`aitrader.features.volatility.fit_garch`, arch, zero mean, on the training bars'
returns). Per row, the variance recursion of that feature
(:func:`aitrader.features.volatility._garch_seed`: seeded with the mean square, then
``σ² = ω + α r² + β σ²`` bar by bar) runs over the row's own ``window`` returns (the ``lags``
feature), so σ at bar ``t`` uses bars ``≤ t`` only and is the same in batch and bar by bar.
With β ≈ 0.9 the seed's weight after 48 bars is below 1 %.

Outputs (:meth:`GarchAgentModel.outputs`, per bar ``t``, about bar ``t + 1``):

* ``garch_sigma`` — σ of the next log return (a fraction per bar, what vol-target sizing
  divides by; :meth:`GarchAgentModel.sigma` returns it alone);
* ``garch_range`` — the expected next high-low range ``ln(H/L)``: σ times the training
  window's mean range per σ (for stops);
* ``vol_high_p`` — P(the next range is above the training window's ``high_quantile``), from
  the head (logistic, or a small MLP with ``hidden`` > 0) on the residual features.

Direction probabilities come from a second head on the same features (volatility mostly
separates "flat" from "moves"; it says little about the sign).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import Field

from aitrader.errors import DataError
from aitrader.frozen import Frozen
from aitrader.models import lagged
from aitrader.models.base import ArrayLike, ClassifierBase, check_training
from aitrader.models.codecs import StateCodec, json_bytes, npz_bytes, read_npz
from aitrader.models.heads import Head, HeadConfig, binary_head, fit_head
from aitrader.models.kinds import ModelKind, register

if TYPE_CHECKING:
    import pandas as pd

OUTPUTS = ("garch_sigma", "garch_range", "vol_high_p")


class GarchParams(Frozen):
    """The filtered window, the head's size and the high-volatility threshold."""

    window: int = Field(48, ge=8, le=1000, description="bars filtered per row (`lags` feature)")
    hidden: int = Field(0, ge=0, le=256, description="MLP hidden units (0: logistic head)")
    alpha: float = Field(1e-3, ge=0, description="L2 strength of the head")
    high_quantile: float = Field(0.75, gt=0, lt=1, description="high-volatility threshold")
    max_iter: int = Field(300, ge=10, le=10_000)


def _residual_features(ret: np.ndarray, hl: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log σ, the last ranges and standardised returns relative to σ."""
    s = sigma[:, None]
    return np.column_stack(
        [
            np.log(sigma),
            np.log(np.maximum(hl[:, -1], 1e-6) / sigma),
            np.log(np.maximum(hl[:, -4:].mean(axis=1), 1e-6) / sigma),
            ret[:, -3:] / s,
            np.abs(ret[:, -1]) / sigma,
        ]
    )


class GarchAgentModel(ClassifierBase):
    """GARCH(1,1) σ forecast + residual head; see the module docstring."""

    def _windows(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return lagged.windows(X, (self.params or GarchParams()).window, "garch")

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit GARCH on the training returns, then the range ratio and the two heads."""
        from aitrader.features.volatility import fit_garch

        features, labels = check_training(X, y)
        p = self.params or GarchParams()
        ret, hl = self._windows(X)
        omega, alpha, beta = fit_garch(ret[:, -1].copy())
        if not np.isfinite(omega):
            raise DataError("the GARCH fit failed on this training window; widen it")
        self.garch_ = np.array([omega, alpha, beta])
        sigma = self._sigma(ret)
        next_hl = lagged.next_bar(hl)
        known = np.isfinite(next_hl)
        if known.sum() < 10:
            raise DataError("garch: fewer than 10 consecutive training bars to learn the range")
        self.range_ratio_ = float(next_hl[known].mean() / sigma[known].mean())
        self.threshold_ = float(np.quantile(next_hl[known], p.high_quantile))
        Z = _residual_features(ret, hl, sigma)
        config = HeadConfig(p.hidden, p.alpha, p.max_iter, self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            high = next_hl[known] > self.threshold_
            self.vol_head_ = binary_head(Z[known], high, config)
            self.head_ = fit_head(Z, labels, config)
        self.classes_ = self.head_.classes
        self.n_features_in_ = features.shape[1]
        return self

    def sigma(self, X: ArrayLike) -> np.ndarray:
        """σ of the next bar's log return at each row (per bar, a fraction)."""
        return self._sigma(self._windows(X)[0])

    def _sigma(self, ret: np.ndarray) -> np.ndarray:
        from aitrader.features.volatility import garch_window_sigma

        if not hasattr(self, "garch_"):
            raise DataError("GarchAgentModel is not fitted: call fit() first")
        omega, alpha, beta = (float(v) for v in self.garch_)
        return np.asarray(garch_window_sigma(np.where(np.isnan(ret), 0.0, ret), omega, alpha, beta))

    def _features(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        ret, hl = self._windows(X)
        sigma = self._sigma(ret)
        return sigma, _residual_features(ret, hl, sigma)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Direction probabilities from the head on the residual features."""
        self._check_fitted()
        return self.head_.predict_proba(self._features(X)[1])

    def outputs(self, X: ArrayLike) -> pd.DataFrame:
        """``garch_sigma``, ``garch_range`` and ``vol_high_p`` per row (see the module)."""
        import pandas as pd

        self._check_fitted()
        sigma, Z = self._features(X)
        high = self.vol_head_.predict_proba(Z)[:, 1]
        values = np.column_stack([sigma, sigma * self.range_ratio_, high])
        return pd.DataFrame(values, columns=list(OUTPUTS))

    def state_files(self) -> dict[str, bytes]:
        """GARCH parameters, range ratio and threshold as JSON; the heads as ``.npz``."""
        meta = {
            "garch": [float(v) for v in self.garch_],
            "range_ratio": self.range_ratio_,
            "threshold": self.threshold_,
            "n_features_in": int(self.n_features_in_),
        }
        arrays = self.head_.arrays("head") | self.vol_head_.arrays("vol")
        return {"garch.json": json_bytes(meta), "garch.npz": npz_bytes(arrays)}

    def load_state(self, files: Mapping[str, bytes]) -> None:
        """Restore what :meth:`state_files` wrote."""
        meta: dict[str, Any] = json.load(io.BytesIO(files["garch.json"]))
        arrays = read_npz(files["garch.npz"])
        self.garch_ = np.asarray(meta["garch"], dtype=np.float64)
        self.range_ratio_ = float(meta["range_ratio"])
        self.threshold_ = float(meta["threshold"])
        self.head_ = Head.from_arrays(arrays, "head")
        self.vol_head_ = Head.from_arrays(arrays, "vol")
        self.classes_ = self.head_.classes
        self.n_features_in_ = int(meta["n_features_in"])


register(
    ModelKind(
        name="garch",
        summary="volatility agent: GARCH(1,1) next-bar sigma, range and high-vol probability "
        "(reads the `lags` window)",
        estimator=GarchAgentModel,
        params=GarchParams,
        codec=StateCodec(),
        features=lagged.needs("window"),
        raw_features=True,
    )
)
