"""The volatility agent: σ tracks a planted GARCH process, the range and the high-volatility
probability hold out of sample on BTC, vol targeting reads σ, bit-identical."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from aitrader.risk.sizing import vol_target_fraction


def _garch_walk(kit: SimpleNamespace, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Candles of a GARCH(1,1) process (ω=2e-6, α=0.08, β=0.9) and the true σ of bar t+1."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.08, 0.9
    var = omega / (1 - alpha - beta)
    r, sig = np.empty(n), np.empty(n)
    for t in range(n):
        sig[t] = np.sqrt(var)
        r[t] = sig[t] * rng.normal()
        var = omega + alpha * r[t] ** 2 + beta * var
    return kit.candles_of(r, sig, rng), np.r_[sig[1:], np.nan]


def test_sigma_tracks_a_planted_garch_process(kit: SimpleNamespace) -> None:
    candles, true_next = _garch_walk(kit, 5000, seed=2)
    X, y = kit.rows(candles)
    chain = kit.fitted("garch", X.iloc[:3000], y[:3000], window=kit.LAGS)
    sigma = chain.model.sigma(X.iloc[3000:])
    truth = pd.Series(true_next, index=candles.index).reindex(X.index[3000:]).to_numpy()
    ok = np.isfinite(truth)
    assert np.corrcoef(sigma[ok], truth[ok])[0, 1] > 0.9
    assert abs(np.mean(sigma[ok]) / np.mean(truth[ok]) - 1) < 0.1


@pytest.mark.parametrize("hidden", [0, 8])
def test_range_and_high_vol_probability_hold_out_of_sample(
    kit: SimpleNamespace, btc: pd.DataFrame, hidden: int
) -> None:
    from sklearn.metrics import roc_auc_score

    X, y = kit.rows(btc)
    chain = kit.fitted("garch", X.iloc[:2000], y[:2000], window=kit.LAGS, hidden=hidden)
    out = chain.model.outputs(X.iloc[2000:-1])
    hl = np.log(btc["high"] / btc["low"]).shift(-1).reindex(X.index[2000:-1]).to_numpy()
    assert abs(out["garch_range"].mean() / hl.mean() - 1) < 0.2
    high = hl > chain.model.threshold_
    assert roc_auc_score(high, out["vol_high_p"]) > 0.65
    assert roc_auc_score(high, out["garch_sigma"]) > 0.65


def test_vol_targeting_reads_sigma(kit: SimpleNamespace) -> None:
    candles, regime = kit.regime_walk(3000, seed=4)
    X, y = kit.rows(candles)
    chain = kit.fitted("garch", X.iloc[:2000], y[:2000], window=kit.LAGS)
    sigma = chain.model.sigma(X.iloc[2000:])
    exposure = np.array([vol_target_fraction(0.004, s, 1.0) for s in sigma])
    calm = pd.Series(regime, index=candles.index).reindex(X.index[2000:]).to_numpy() == 0
    # calm bars (σ 0.2 %) hit the leverage cap; wild ones (σ 2 %) get about a fifth
    assert np.median(exposure[calm]) == 1.0
    assert np.median(exposure[~calm]) == pytest.approx(0.2, rel=0.3)


def test_bit_identical_after_loading_and_row_by_row(
    kit: SimpleNamespace, btc: pd.DataFrame, tmp_path: Path
) -> None:
    """(Causality: tests/models/test_model_causality.py, with the same MLP head.)"""
    X, y = kit.rows(btc)
    chain = kit.fitted("garch", X.iloc[:1500], y[:1500], window=kit.LAGS, hidden=4)
    loaded = kit.round_trip(chain, tmp_path)
    assert np.array_equal(loaded.predict_proba(X), chain.predict_proba(X))
    assert np.array_equal(loaded.model.outputs(X).to_numpy(), chain.model.outputs(X).to_numpy())
    single = np.vstack([chain.model.outputs(X.iloc[[i]]).to_numpy() for i in range(1500, 1510)])
    assert np.array_equal(single, chain.model.outputs(X.iloc[1500:1510]).to_numpy())


def test_the_window_has_forgotten_its_seed(btc: pd.DataFrame, kit: SimpleNamespace) -> None:
    """σ from the 48-bar window is within 1 % of σ from 200 bars (99 % of rows)."""
    from aitrader.features.spec import FeatureSpec
    from aitrader.models.garch import GarchAgentModel

    X, y = kit.rows(btc, [FeatureSpec(name="lags", params={"lags": 200})])
    short = kit.fitted("garch", X.iloc[:1500], y[:1500]).model  # default window: 48 bars
    long = GarchAgentModel(short.params.model_copy(update={"window": 200}))
    long.garch_ = short.garch_
    ratio = short.sigma(X.iloc[1500:]) / long.sigma(X.iloc[1500:])
    assert np.percentile(np.abs(ratio - 1), 99) < 0.01
