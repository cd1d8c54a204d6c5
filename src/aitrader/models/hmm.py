"""The HMM regime agent: a Gaussian hidden Markov model of (log return, log range) per bar.

Fitted (hmmlearn ``GaussianHMM``, diagonal covariances) on the training window's bars only;
states are then ordered by the variance of their returns, so state 0 is always the calmest and
the last the most volatile, whatever order the EM fit found them in (labels stay stable across
refits).

At prediction time the state probabilities of bar ``t`` are **forward-filtered**: the forward
algorithm runs over the row's own ``window`` bars (the ``lags`` feature), starting from the
chain's stationary distribution, and stops at bar ``t``. ``GaussianHMM.predict`` (Viterbi over
the whole sequence) would use later bars and is never called; the causality test holds a
Viterbi variant that the harness must flag. A filter started ``window`` bars back has forgotten
its start (the forward recursion contracts geometrically), so the value is the full-history
filter's up to a negligible difference, and the same in batch and bar by bar.

Direction probabilities: ``P(class | bars ≤ t) = Σ_s P(s | bars ≤ t) · P(class | s)``, the
per-state class frequencies weighted by the filtered probabilities on the training window.
:meth:`HMMRegimeModel.outputs` gives the state probabilities ``hmm_p0 .. hmm_p{K-1}``.
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
from aitrader.models.heads import rowdot
from aitrader.models.kinds import ModelKind, register

if TYPE_CHECKING:
    import pandas as pd

_STATE = ("initial_", "transmat_", "means_", "vars_", "obs_mean_", "obs_scale_", "emit_")


class HMMParams(Frozen):
    """Number of regimes, the filtered window and the EM settings."""

    states: int = Field(3, ge=2, le=6, description="hidden regimes (0 = calmest)")
    window: int = Field(
        48, ge=2, le=1000, description="bars forward-filtered per prediction (`lags` feature)"
    )
    n_iter: int = Field(100, ge=1, le=10_000, description="EM iterations")
    smoothing: float = Field(1.0, ge=0, description="pseudo-count per state and class")


def stationary(transmat: np.ndarray) -> np.ndarray:
    """The stationary distribution of a transition matrix (left eigenvector of eigenvalue 1)."""
    values, vectors = np.linalg.eig(transmat.T)
    v = np.abs(np.real(vectors[:, int(np.argmin(np.abs(values - 1.0)))]))
    return np.asarray(v / v.sum(), dtype=np.float64)


class HMMRegimeModel(ClassifierBase):
    """Gaussian HMM regimes, forward-filtered per bar; see the module docstring."""

    def _windows(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return lagged.windows(X, (self.params or HMMParams()).window, "hmm")

    @staticmethod
    def _observations(ret: np.ndarray, hl: np.ndarray) -> np.ndarray:
        """(rows, bars, 2): the return and the log of the range (floored at 1e-5)."""
        return np.stack([ret, np.log(np.maximum(hl, 1e-5))], axis=-1)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit the HMM on the training bars, order states by volatility, learn P(class | s)."""
        features, labels = check_training(X, y)
        ret, hl = self._windows(X)
        obs = self._observations(ret, hl)
        sequence = obs[:, -1, :]
        self.obs_mean_ = sequence.mean(axis=0)
        self.obs_scale_ = np.where(sequence.std(axis=0) > 0, sequence.std(axis=0), 1.0)
        self._fit_hmm(lagged.standardise(sequence, self.obs_mean_, self.obs_scale_), ret)
        self.classes_ = np.unique(labels)
        p = self.params or HMMParams()
        gamma = self.state_proba(X)
        onehot = (labels[:, None] == self.classes_[None, :]).astype(np.float64)
        counts = gamma.T @ onehot + p.smoothing
        self.emit_ = counts / counts.sum(axis=1, keepdims=True)
        self.n_features_in_ = features.shape[1]
        return self

    def _fit_hmm(self, sequence: np.ndarray, ret: np.ndarray) -> None:
        from hmmlearn.hmm import GaussianHMM

        p = self.params or HMMParams()
        hmm = GaussianHMM(
            n_components=p.states,
            covariance_type="diag",
            n_iter=p.n_iter,
            random_state=self.seed,
            min_covar=1e-4,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hmm.fit(sequence, lagged.segments(ret))
        variances = np.asarray(hmm.covars_)[:, 0, 0]
        if not np.isfinite(variances).all() or not np.isfinite(hmm.transmat_).all():
            raise DataError("the HMM fit did not converge to finite parameters; widen the window")
        order = np.argsort(variances, kind="stable")
        self.transmat_ = np.ascontiguousarray(np.asarray(hmm.transmat_)[np.ix_(order, order)])
        self.means_ = np.ascontiguousarray(np.asarray(hmm.means_)[order])
        self.vars_ = np.ascontiguousarray(np.asarray(hmm.covars_)[order][:, [0, 1], [0, 1]])
        self.initial_ = stationary(self.transmat_)

    def _loglik(self, obs: np.ndarray) -> np.ndarray:
        """Per-bar, per-state Gaussian log densities, (rows, bars, states)."""
        z = lagged.standardise(obs, self.obs_mean_, self.obs_scale_)[:, :, None, :]
        sq = (z - self.means_[None, None]) ** 2 / self.vars_[None, None]
        terms = sq + np.log(2.0 * np.pi * self.vars_)[None, None]
        return np.ascontiguousarray(-0.5 * (terms[..., 0] + terms[..., 1]))

    def state_proba(self, X: ArrayLike) -> np.ndarray:
        """Forward-filtered state probabilities at each row's bar (rows × states, 0 calmest)."""
        if not hasattr(self, "transmat_"):
            raise DataError("HMMRegimeModel is not fitted: call fit() first")
        from aitrader.models.hmm_filter import forward

        obs = self._observations(*self._windows(X))
        return np.asarray(forward(self._loglik(obs), self.initial_, self.transmat_))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities: filtered state probabilities × per-state class frequencies."""
        self._check_fitted()
        return rowdot(self.state_proba(X), self.emit_)

    def regime_proba(self, X: ArrayLike) -> np.ndarray:
        """P(regime k | bars ≤ t) per row: what the meta-agent's per-regime weights read when
        this agent is its ``regime_agent``."""
        return self.state_proba(X)

    def outputs(self, X: ArrayLike) -> pd.DataFrame:
        """``hmm_p0 .. hmm_p{K-1}``: P(regime k | bars ≤ t), regime 0 the calmest."""
        import pandas as pd

        gamma = self.state_proba(X)
        return pd.DataFrame(gamma, columns=[f"hmm_p{k}" for k in range(gamma.shape[1])])

    def state_files(self) -> dict[str, bytes]:
        """The fitted arrays as ``hmm.npz`` and the classes as ``hmm.json``."""
        arrays = {name: getattr(self, name) for name in _STATE}
        meta = {"classes": self.classes_.tolist(), "n_features_in": int(self.n_features_in_)}
        return {"hmm.json": json_bytes(meta), "hmm.npz": npz_bytes(arrays)}

    def load_state(self, files: Mapping[str, bytes]) -> None:
        """Restore what :meth:`state_files` wrote."""
        meta: dict[str, Any] = json.load(io.BytesIO(files["hmm.json"]))
        arrays = read_npz(files["hmm.npz"])
        for name in _STATE:
            setattr(self, name, np.ascontiguousarray(arrays[name]))
        self.classes_ = np.asarray(meta["classes"])
        self.n_features_in_ = int(meta["n_features_in"])


register(
    ModelKind(
        name="hmm",
        summary="regime agent: Gaussian HMM on returns/ranges, forward-filtered per bar "
        "(reads the `lags` window)",
        estimator=HMMRegimeModel,
        params=HMMParams,
        codec=StateCodec(),
        features=lagged.needs("window"),
        raw_features=True,
        extra="regime",
        requires=("hmmlearn",),
    )
)
