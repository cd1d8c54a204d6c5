"""Fixtures for the agent tests (hmm, garch, quantile): features with the `lags` window, a
fitted chain, a bundle round trip, synthetic regime data (as ``kit``, a namespace)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeatureSpec
from aitrader.models import kinds
from aitrader.models.bundle_files import predictor_files, read_predictor
from aitrader.models.predictor import Predictor

LAGS = 32
SPECS = [FeatureSpec(name="realized_vol"), FeatureSpec(name="lags", params={"lags": LAGS})]


def rows(
    candles: pd.DataFrame, specs: list[FeatureSpec] = SPECS
) -> tuple[pd.DataFrame, np.ndarray]:
    """Finite feature rows and the sign of the next close-to-close return as the label."""
    X = build_features(candles, specs).frame
    X = X[np.isfinite(X.to_numpy()).all(axis=1)]
    nxt = np.log(candles["close"]).diff().shift(-1).reindex(X.index).to_numpy()
    return X, np.sign(np.nan_to_num(nxt)).astype(np.float64)


def fitted(kind: str, X: pd.DataFrame, y: np.ndarray, **params: Any) -> Predictor:
    """A chain (no scaler, no calibrator) around a ``kind`` model fitted on ``X``, ``y``."""
    k = kinds.get(kind)
    model = k.build(k.validate_params(params), seed=42, n_jobs=1).fit(X, y)
    names = tuple(str(c) for c in X.columns)
    return Predictor(names, np.unique(y), model, None, None)


def round_trip(predictor: Predictor, tmp: Path) -> Predictor:
    """The chain written as bundle files and read back."""
    return read_predictor(tmp, predictor_files(predictor))


def next_log_return(candles: pd.DataFrame, index: pd.Index) -> np.ndarray:
    return np.asarray(np.log(candles["close"]).diff().shift(-1).reindex(index).to_numpy())


def candles_of(r: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Hourly candles with log returns ``r``; each bar's range grows with its ``sigma``."""
    n = r.shape[0]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0.0, 1.0, n)) * sigma / 2
    high = np.maximum(open_, close) * np.exp(spread)
    low = np.minimum(open_, close) * np.exp(-spread)
    index = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    )


def regime_walk(
    n: int, seed: int, vols: tuple[float, ...] = (0.002, 0.02), block: int = 300
) -> tuple[pd.DataFrame, np.ndarray]:
    """Hourly candles whose volatility switches between ``vols`` every ``block`` bars; the
    true regime index per bar."""
    rng = np.random.default_rng(seed)
    regime = (np.arange(n) // block) % len(vols)
    sigma = np.asarray(vols)[regime]
    return candles_of(rng.normal(0.0, 1.0, n) * sigma, sigma, rng), regime


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for the agent tests."""
    return SimpleNamespace(
        LAGS=LAGS,
        SPECS=SPECS,
        rows=rows,
        fitted=fitted,
        round_trip=round_trip,
        next_log_return=next_log_return,
        regime_walk=regime_walk,
        candles_of=candles_of,
    )


@pytest.fixture(scope="session")
def btc() -> pd.DataFrame:
    """3,000 real hourly BTC/USD candles (the bundled sample's start)."""
    return load_sample("BTC-USD-1h").iloc[:3000]
