"""GarchFilter (one bar at a time) gives exactly garch_vol's batch values: same refit bars, same
fits, same variance recursion, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.features.volatility import GarchFilter, garch_vol


@pytest.fixture(scope="module")
def close() -> np.ndarray:
    return load_sample("BTC-USD-1h")["close"].to_numpy(np.float64)


def _stream(f: GarchFilter, close: np.ndarray) -> np.ndarray:
    return np.array([f.update(float(c)) for c in close])


def test_default_params_over_the_sample_equal_batch(close: np.ndarray) -> None:
    batch = garch_vol(close)
    seeded = 20_500  # the seed history spans two refits; the replay crosses three more
    f = GarchFilter.from_closes(close[:seeded])
    assert f.bars == seeded
    assert f.value == batch[seeded - 1]
    live = _stream(f, close[seeded:])
    assert np.isfinite(live).all()
    assert np.array_equal(live, batch[seeded:])


def test_frequent_refits_from_the_first_bar_equal_batch(close: np.ndarray) -> None:
    c = close[:6000]
    batch = garch_vol(c, window=300, refit_every=777)
    live = _stream(GarchFilter(300, 777), c)
    assert np.array_equal(live, batch, equal_nan=True)
    assert np.isnan(live[:300]).all() and np.isfinite(live[300:]).all()


def test_failed_fit_and_missing_close_follow_batch(close: np.ndarray) -> None:
    c = close[:3000].copy()
    c[:400] = c[0]  # flat start: the first fit sees zero variance and fails (NaN)
    c[1500] = np.nan  # a missing close: its returns count as 0, the fit on it fails
    batch = garch_vol(c, window=300, refit_every=500)
    live = _stream(GarchFilter(300, 500), c)
    assert np.array_equal(live, batch, equal_nan=True)
    assert np.isnan(live[300:800]).all() and np.isfinite(live[800:]).any()


def test_seeded_from_a_frame_column_equals_streamed(close: np.ndarray) -> None:
    c = pd.Series(close[:2000]).to_numpy()
    seeded = GarchFilter.from_closes(c, 300, 400)
    streamed = GarchFilter(300, 400)
    _stream(streamed, c)
    assert seeded.value == streamed.value and seeded.bars == streamed.bars
    assert seeded.update(float(close[2000])) == streamed.update(float(close[2000]))


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="window"):
        GarchFilter(1, 10)
