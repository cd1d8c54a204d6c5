"""The HMM regime agent: volatility-ordered states, regimes found on planted data, a
bit-identical bundle round trip (forward filtering only: the Viterbi trap is in
test_model_causality.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from aitrader.errors import ConfigError
from aitrader.features.spec import FeatureSpec
from aitrader.models.hmm import HMMRegimeModel


def test_one_row_equals_the_batch_row(kit: SimpleNamespace, btc: pd.DataFrame) -> None:
    X, y = kit.rows(btc)
    chain = kit.fitted("hmm", X.iloc[:1500], y[:1500], window=kit.LAGS)
    batch = chain.predict_proba(X.iloc[1500:])
    single = np.vstack([chain.predict_proba(X.iloc[[i]]) for i in range(1500, 1520)])
    assert np.array_equal(single, batch[:20])


def test_planted_volatility_regimes_are_found_and_ordered(kit: SimpleNamespace) -> None:
    candles, regime = kit.regime_walk(4000, seed=5)
    X, y = kit.rows(candles)
    truth = pd.Series(regime, index=candles.index).reindex(X.index).to_numpy()
    chain = kit.fitted("hmm", X.iloc[:2500], y[:2500], window=kit.LAGS, states=2)
    model = chain.model
    assert model.vars_[0, 0] < model.vars_[1, 0]  # state 0 is the calm one
    out = chain.model.outputs(X.iloc[2500:])
    hit = (out["hmm_p1"].to_numpy() > 0.5).astype(int) == truth[2500:]
    assert hit.mean() > 0.95


def test_state_labels_are_stable_across_refits(kit: SimpleNamespace) -> None:
    candles, _ = kit.regime_walk(4000, seed=8, vols=(0.002, 0.008, 0.03))
    X, y = kit.rows(candles)
    first = kit.fitted("hmm", X.iloc[:2000], y[:2000], window=kit.LAGS).model
    second = kit.fitted("hmm", X.iloc[1000:3000], y[1000:3000], window=kit.LAGS).model
    assert np.all(np.diff(first.vars_[:, 0]) > 0) and np.all(np.diff(second.vars_[:, 0]) > 0)
    a = first.state_proba(X.iloc[3000:]).argmax(axis=1)
    b = second.state_proba(X.iloc[3000:]).argmax(axis=1)
    assert np.mean(a == b) > 0.9


def test_bundle_round_trip_is_bit_identical(
    kit: SimpleNamespace, btc: pd.DataFrame, tmp_path: Path
) -> None:
    X, y = kit.rows(btc)
    chain = kit.fitted("hmm", X.iloc[:1500], y[:1500], window=kit.LAGS)
    loaded = kit.round_trip(chain, tmp_path)
    assert np.array_equal(loaded.predict_proba(X), chain.predict_proba(X))
    assert np.array_equal(loaded.model.outputs(X).to_numpy(), chain.model.outputs(X).to_numpy())
    assert np.array_equal(loaded.classes, chain.classes)


def test_missing_lags_feature_is_a_clear_error(kit: SimpleNamespace, btc: pd.DataFrame) -> None:
    X, y = kit.rows(btc, [FeatureSpec(name="realized_vol")])
    with pytest.raises(ConfigError, match=r"reads the last 48 bars from the `lags` feature"):
        kit.fitted("hmm", X, y)


def test_an_experiment_adds_the_window_the_kind_reads() -> None:
    from aitrader.models.config import ModelConfig
    from aitrader.validation.experiment import ExperimentConfig

    hmm = ModelConfig.model_validate({"kind": "hmm", "hmm": {"window": 64}})
    added = ExperimentConfig(models=hmm).features.extra
    assert added == (FeatureSpec(name="lags", params={"lags": 64}),)
    own = {"extra": [{"name": "lags", "params": {"lags": 100}}]}
    kept = ExperimentConfig.model_validate({"models": hmm, "features": own}).features.extra
    assert kept == (FeatureSpec(name="lags", params={"lags": 100}),)  # the user's window stays
    assert ExperimentConfig().features.extra == ()  # lightgbm reads no window


def test_the_window_has_forgotten_where_it_started(btc: pd.DataFrame, kit: SimpleNamespace) -> None:
    """The 32-bar forward filter equals one over 200 bars: filtering the row's window is the
    full-history filter."""
    specs = [FeatureSpec(name="lags", params={"lags": 200})]
    X, y = kit.rows(btc, specs)
    short = kit.fitted("hmm", X.iloc[:1500], y[:1500], window=kit.LAGS).model
    long = HMMRegimeModel(short.params.model_copy(update={"window": 200}))
    for name in ("initial_", "transmat_", "means_", "vars_", "obs_mean_", "obs_scale_"):
        setattr(long, name, getattr(short, name))
    gap = np.abs(short.state_proba(X.iloc[1500:]) - long.state_proba(X.iloc[1500:]))
    assert gap.max() < 1e-6


def test_listing_the_kinds_imports_no_heavy_library() -> None:
    """The agents' modules import hmmlearn, arch, numba, LightGBM and pandas only when used."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys; from aitrader.models import kinds; kinds.names(); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    heavy = {"hmmlearn", "arch", "numba", "scipy", "sklearn", "lightgbm", "pandas"}
    assert heavy.isdisjoint(json.loads(done.stdout))


def test_the_meta_agent_weights_its_agents_per_hmm_regime(kit: SimpleNamespace) -> None:
    """The HMM agent as the meta-agent's regime agent: the explanation carries its forward-
    filtered regime probabilities and one weight per agent, and they sum to one."""
    from aitrader.models.config import ModelConfig
    from aitrader.models.factory import make_model

    candles, _ = kit.regime_walk(2400, seed=5)
    X, y = kit.rows(candles)
    hmm = {"kind": "hmm", "params": {"window": kit.LAGS}}
    params = {"agents": ["logistic", hmm], "regime_agent": "hmm", "combiner": "vote"}
    model = make_model(ModelConfig.model_validate({"kind": "meta", "meta": params}))
    model.fit(X.iloc[:2000], y[:2000])
    info = model.explain(model.combine(X.iloc[2000:]))
    regimes = np.asarray(info["regimes"], dtype=np.float64)
    assert regimes.shape == (3,) and abs(regimes.sum() - 1.0) < 1e-9
    direct = model.agents_[1].model.regime_proba(X.iloc[2000:])[-1]
    np.testing.assert_allclose(regimes, direct, rtol=1e-9)
    weights = [a["weight"] for a in info["agents"].values()]
    assert len(weights) == 2 and abs(sum(weights) - 1.0) < 1e-9
