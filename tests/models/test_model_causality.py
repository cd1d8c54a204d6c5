"""The one causality harness (``aitrader.validation.leakage``) over every registered model kind:
a fitted chain's probabilities and agent outputs at row t do not change when the rows after t
are cut off or replaced; models that read ahead (Viterbi decoding, a centred window) are caught.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.features.causality import random_cuts
from aitrader.features.spec import FeatureSpec
from aitrader.models import kinds
from aitrader.models.agents import agent_outputs
from aitrader.models.base import ArrayLike
from aitrader.models.hmm import HMMRegimeModel
from aitrader.models.predictor import Predictor
from aitrader.validation.leakage import model_violations, truncation_violations

LAGS = 32
SPECS = [
    FeatureSpec(name="realized_vol"),
    FeatureSpec(name="trend_strength", params={"window": 2}),  # what persistence reads
    FeatureSpec(name="lags", params={"lags": LAGS}),  # what hmm, garch read
]
TINY: dict[str, Any] = {"window": 8, "hidden": 8, "epochs": 3, "purge": 4, "batch_size": 64}
SLOW = {"meta"}  # fits its agents once per inner fold
KINDS = [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in kinds.names()]
PARAMS: dict[str, dict[str, Any]] = {  # small and fast; a kind not listed gets its defaults
    "lightgbm": {"n_estimators": 30},
    "random_forest": {"n_estimators": 20},
    "xgboost": {"n_estimators": 20},
    "quantile": {"n_estimators": 40},
    "hmm": {"window": LAGS},
    "garch": {"window": LAGS, "hidden": 4},  # the MLP head on the residual features
    "lstm": TINY,
    "tcn": TINY | {"levels": 1},
    "transformer": TINY | {"heads": 2},
    "cnn": TINY,
    "meta": {  # a sequence agent and the HMM regime agent behind a learned stack
        "agents": [
            "logistic",
            {"kind": "hmm", "params": {"window": LAGS}},
            {"kind": "tcn", "params": TINY | {"levels": 1}},
        ],
        "combiner": "stack",
        "regime_agent": "hmm",
    },
}


@pytest.fixture(scope="module")
def rows(kit: SimpleNamespace, btc: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    return kit.rows(btc, SPECS)  # type: ignore[no-any-return]


def _cuts(n: int) -> list[int]:
    """Early rows (inside a sequence model's first window), the end of training, random rows."""
    return [2, 9, 1499, 1500, *random_cuts(n, 5, min_rows=n // 2, seed=11)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_at_row_t_ignores_later_rows(
    kind: str, kit: SimpleNamespace, rows: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = rows
    chain = kit.fitted(kind, X.iloc[:1500], y[:1500], **PARAMS.get(kind, {}))
    found = model_violations(chain, X, _cuts(len(X)))
    assert found == [], "\n".join(map(str, found[:5]))


@pytest.mark.parametrize("kind", ["hmm", "garch", "quantile"])
def test_the_harness_reads_the_agent_outputs(
    kind: str, kit: SimpleNamespace, rows: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """An agent whose output leaks (the first output column shifted one row back) is caught on
    that column while its probabilities stay clean."""
    X, y = rows
    chain = kit.fitted(kind, X.iloc[:1500], y[:1500], **PARAMS[kind])
    first = str(agent_outputs(chain, X.iloc[:5]).columns[0])
    honest = chain.model.outputs

    def peeking(frame: ArrayLike) -> pd.DataFrame:
        table: pd.DataFrame = honest(frame)
        table[first] = table[first].shift(-1)
        return table

    chain.model.outputs = peeking
    found = model_violations(chain, X, [1600, 2400])
    assert {v.column for v in found} == {first}
    assert {(v.cut, v.row) for v in found} == {(1600, 1600), (2400, 2400)}


class ViterbiHMM(HMMRegimeModel):
    """The trap: states decoded by Viterbi (``GaussianHMM.predict``) over all rows given."""

    def state_proba(self, X: ArrayLike) -> np.ndarray:
        from hmmlearn.hmm import GaussianHMM

        ret, hl = self._windows(X)
        obs = self._observations(ret, hl)[:, -1, :]
        hmm = GaussianHMM(n_components=self.transmat_.shape[0], covariance_type="diag")
        hmm.startprob_, hmm.transmat_ = self.initial_, self.transmat_
        hmm.means_, hmm.covars_ = self.means_, self.vars_
        states = hmm.predict((obs - self.obs_mean_) / self.obs_scale_)
        return np.eye(self.transmat_.shape[0])[states]


def test_viterbi_decoding_is_caught(
    kit: SimpleNamespace, rows: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """The forward-filtered HMM passes (above); the same fitted HMM decoded by Viterbi fails."""
    X, y = rows
    chain = kit.fitted("hmm", X.iloc[:1500], y[:1500], window=LAGS)
    leaky = ViterbiHMM(chain.model.params, seed=42)
    for name in ("initial_", "transmat_", "means_", "vars_", "obs_mean_", "obs_scale_", "emit_"):
        setattr(leaky, name, getattr(chain.model, name))
    leaky.classes_, leaky.n_features_in_ = chain.model.classes_, chain.model.n_features_in_
    trap = Predictor(chain.feature_names, chain.classes, leaky, None, None)
    found = model_violations(trap, X, random_cuts(len(X), 30, min_rows=len(X) // 2, seed=11))
    assert found, "the Viterbi decoder uses later bars and must be flagged"
    assert {v.column for v in found} & {"hmm_p0", "hmm_p1", "hmm_p2"}
    assert {v.check for v in found} == {"truncated", "future altered"}


def test_a_centred_window_is_caught_by_both_checks() -> None:
    """What a bidirectional net or a smoother does: half of its window lies after row t."""
    X = pd.DataFrame({"a": np.random.default_rng(0).normal(size=200)})

    def centred(frame: pd.DataFrame) -> np.ndarray:
        return frame["a"].rolling(5, center=True, min_periods=1).mean().to_numpy()

    found = truncation_violations(X, centred, [20, 100])
    assert [(v.cut, v.row, v.check) for v in found] == [
        (20, 19, "truncated"),
        (20, 19, "future altered"),
        (100, 99, "truncated"),
        (100, 99, "future altered"),
    ]
    assert "output 0: row 19 is" in str(found[0])
    assert str(found[0]).endswith("when the series ends at row 20")
    assert str(found[1]).endswith("when the rows after row 20 are replaced by other values")
