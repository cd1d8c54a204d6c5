"""Magnitude and intervals: split-conformal 80 % / 95 % intervals of the next log return keep
their coverage out of sample (synthetic heteroscedastic walk and bundled BTC hourly data).

Stated tolerance: |coverage − nominal| ≤ 0.04 at 80 % and ≤ 0.025 at 95 % on the synthetic
walk; ≤ 0.05 and ≤ 0.03 on BTC (non-stationary: the conformal slice is from an earlier
period).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.models.quantile import conformal_widening
from aitrader.validation.metrics import interval_metrics

FAST = {"n_estimators": 60, "learning_rate": 0.05}


def _coverage(out: pd.DataFrame, r: np.ndarray, level: int) -> float:
    return interval_metrics(out, r)[f"coverage_{level}"]


def _hetero_walk(kit: SimpleNamespace, n: int, seed: int) -> pd.DataFrame:
    """A random walk whose volatility drifts smoothly (log-σ AR(1)): intervals must adapt."""
    rng = np.random.default_rng(seed)
    log_sigma = np.empty(n)
    log_sigma[0] = np.log(0.006)
    for t in range(1, n):
        log_sigma[t] = 0.98 * log_sigma[t - 1] + 0.02 * np.log(0.006) + 0.1 * rng.normal()
    sigma = np.exp(log_sigma)
    return kit.candles_of(sigma * rng.normal(size=n), sigma, rng)


def test_conformal_widening_takes_the_finite_sample_rank() -> None:
    lo, hi = np.zeros(9), np.zeros(9)
    r = np.arange(1.0, 10.0)  # scores 1..9
    assert conformal_widening(lo, hi, r, 0.8) == 8.0  # ⌈10 · 0.8⌉ = 8th smallest
    assert math.isinf(conformal_widening(lo, hi, r, 0.95))  # ⌈10 · 0.95⌉ = 10 > 9 scores


@pytest.mark.slow
def test_intervals_hold_coverage_on_a_synthetic_walk(kit: SimpleNamespace) -> None:
    candles = _hetero_walk(kit, 8000, seed=1)
    X, y = kit.rows(candles)
    chain = kit.fitted("quantile", X.iloc[:5000], y[:5000], **FAST)
    out = chain.model.outputs(X.iloc[5000:])
    r = kit.next_log_return(candles, X.index[5000:])
    assert abs(_coverage(out, r, 80) - 0.80) <= 0.04
    assert abs(_coverage(out, r, 95) - 0.95) <= 0.025
    width = (out["ret_hi80"] - out["ret_lo80"]).to_numpy()
    assert np.corrcoef(width, np.abs(np.nan_to_num(r)))[0, 1] > 0.2  # wider when wilder


@pytest.mark.slow
def test_intervals_hold_coverage_on_btc(kit: SimpleNamespace) -> None:
    candles = load_sample("BTC-USD-1h").iloc[:12_000]
    X, y = kit.rows(candles)
    chain = kit.fitted("quantile", X.iloc[:8000], y[:8000], **FAST)
    out = chain.model.outputs(X.iloc[8000:])
    r = kit.next_log_return(candles, X.index[8000:])
    assert abs(_coverage(out, r, 80) - 0.80) <= 0.05
    assert abs(_coverage(out, r, 95) - 0.95) <= 0.03


def test_bit_identical_after_loading(
    kit: SimpleNamespace, btc: pd.DataFrame, tmp_path: Path
) -> None:
    """(Causality: tests/models/test_model_causality.py.)"""
    X, y = kit.rows(btc)
    chain = kit.fitted("quantile", X.iloc[:1500], y[:1500], **FAST)
    loaded = kit.round_trip(chain, tmp_path)
    assert np.array_equal(loaded.predict_proba(X), chain.predict_proba(X))
    assert np.array_equal(loaded.model.outputs(X).to_numpy(), chain.model.outputs(X).to_numpy())
