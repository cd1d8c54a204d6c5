"""Property tests on random OHLCV that respects the OHLC invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitrader.data.schema import validate_candles
from aitrader.features import registry
from aitrader.features.bars import Bars, bars_from_candles
from aitrader.features.featureset import compute_spec
from aitrader.features.spec import FeatureSpec

SMALL_PARAMS: dict[str, dict[str, bool | int | float | str]] = {
    "garch": {"window": 100, "refit_every": 60},
}

# column prefix -> inclusive bounds every value must respect
RANGES: dict[str, tuple[float, float]] = {
    "rsi_": (0.0, 100.0),
    "stoch_": (0.0, 100.0),
    "willr_": (-100.0, 0.0),
    "adx_": (0.0, 100.0),
    "plus_di_": (0.0, 100.0),
    "minus_di_": (0.0, 100.0),
    "atr_": (0.0, np.inf),
    "rv_": (0.0, np.inf),
    "parkinson_": (0.0, np.inf),
    "gk_": (0.0, np.inf),
    "garch_vol_": (0.0, np.inf),
    "bb_width_": (0.0, np.inf),
    "obv_": (-1.0, 1.0),
    "acf_": (-1.0, 1.0),
    "pct_rank_": (0.0, 1.0),
    "drawdown_": (-1.0, 0.0),
    "trend_strength_": (-1.0, 1.0),
    "roll_spread_": (0.0, np.inf),
    "cs_spread_": (0.0, np.inf),
    "amihud_": (0.0, np.inf),
    "ret_std_": (0.0, np.inf),
    "hour_": (-1.0, 1.0),
    "dow_": (-1.0, 1.0),
    "fib_dir_": (-1.0, 1.0),
}


@st.composite
def ohlcv(draw: st.DrawFn) -> pd.DataFrame:
    """A random walk with gaps, flat stretches and zero-volume bars; OHLC invariants hold."""
    n = draw(st.integers(260, 420))
    seed = draw(st.integers(0, 2**32 - 1))
    sigma = draw(st.sampled_from([1e-4, 2e-3, 0.02, 0.08]))
    flat = draw(st.floats(0.0, 0.4))
    zero_volume = draw(st.floats(0.0, 0.2))
    start = draw(st.datetimes(pd.Timestamp("2000-01-01"), pd.Timestamp("2030-01-01")))
    rng = np.random.default_rng(seed)
    moves = rng.normal(0.0, sigma, n) * (rng.random(n) >= flat)
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, sigma / 4, n) * (moves != 0))
    wick = np.abs(rng.normal(0.0, sigma, (2, n))) * (moves != 0)
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 1.0, n) * (rng.random(n) >= zero_volume)
    index = pd.date_range(pd.Timestamp(start).floor("h"), periods=n, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=pd.DatetimeIndex(index, name="timestamp"),
    )
    validate_candles(frame, "hypothesis")
    return frame


def _check_ranges(column: str, values: np.ndarray) -> None:
    for prefix, (lo, hi) in RANGES.items():
        if column.startswith(prefix):
            finite = values[np.isfinite(values)]
            assert (finite >= lo - 1e-9).all() and (finite <= hi + 1e-9).all(), column


def _check_feature(name: str, bars: Bars) -> None:
    spec = FeatureSpec(name=name, params=SMALL_PARAMS.get(name, {}))
    definition, params = registry.resolve(name, spec.params)
    out = compute_spec(bars, spec)
    n = len(bars)
    assert len(out.values) == len(out.columns) == len(definition.columns(params))
    matrix = np.column_stack(out.values)
    assert matrix.shape == (n, len(out.columns))
    assert not np.isinf(matrix).any(), name
    complete = np.flatnonzero(~np.isnan(matrix).any(axis=1))
    if definition.exact_warmup:
        assert complete.size and complete[0] == out.warmup, (name, complete[:1], out.warmup)
    start = max(out.warmup, int(complete[0]) if complete.size else n)
    if name != "amihud":  # undefined on a window without any volume, by definition
        assert not np.isnan(matrix[start:]).any(), name
    for column, values in zip(out.columns, out.values, strict=True):
        _check_ranges(column, values)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candles=ohlcv())
def test_every_feature_respects_warmup_shape_and_range(candles: pd.DataFrame) -> None:
    bars = bars_from_candles(candles)
    for name in registry.names():
        _check_feature(name, bars)


@settings(max_examples=25, deadline=None)
@given(candles=ohlcv())
def test_bollinger_pctb_is_finite_and_bands_ordered(candles: pd.DataFrame) -> None:
    from aitrader.features.indicators import bandwidth, bbands, percent_b

    close = candles["close"].to_numpy()
    upper, middle, lower = bbands(close)
    pctb, width = percent_b(close, upper, lower), bandwidth(upper, middle, lower)
    assert np.isfinite(pctb[19:]).all()
    assert (upper[19:] >= middle[19:] - 1e-9).all() and (middle[19:] >= lower[19:] - 1e-9).all()
    assert (width[19:] >= 0).all()
