"""Mode selection on synthetic series, regime labels, and mode settings applied to configs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.errors import DataError
from aitrader.risk.config import RiskConfig
from aitrader.strategy.config import (
    REGIMES,
    Band,
    ModesConfig,
    RegimeConfig,
    SignalConfig,
    SignalOverride,
)
from aitrader.strategy.modes import (
    UNKNOWN_REGIME,
    candles_for_modes,
    mode_risk_config,
    mode_signal_config,
    regime_labels,
    select_mode,
)

COSTS = CostsConfig()


def minute_candles(drift: float, sigma: float, volume: float, n: int, seed: int) -> pd.DataFrame:
    """1m candles from a log random walk (open = previous close, a small range around it)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, sigma, n)))
    opens = np.r_[100.0, close[:-1]]
    wick = 1 + sigma / 2
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) * wick,
            "low": np.minimum(opens, close) / wick,
            "close": close,
            "volume": np.full(n, volume),
        },
        index=index,
    )


MINUTES = 60 * 24 * 10  # 10 days: enough for 200 hourly bars


def choose(candles: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    config = ModesConfig()
    choice = select_mode(candles_for_modes(candles, "1m", config), config, COSTS)
    return choice.mode, choice.table()


def test_a_trending_series_selects_swing() -> None:
    mode, table = choose(minute_candles(2e-4, 5e-4, 5_000.0, MINUTES, seed=1))
    assert mode == "swing"
    assert table.loc["swing", "timeframe"] == "1h"
    assert table.loc["swing", "trend_score"] > 0.9
    assert list(table.index) == ["scalping", "intraday", "swing"]


def test_a_noisy_liquid_series_selects_scalping() -> None:
    mode, table = choose(minute_candles(0.0, 5e-3, 5_000.0, MINUTES, seed=2))
    assert mode == "scalping"
    assert table.loc["scalping", "vol_score"] == 1.0
    assert table.loc["scalping", "liq_score"] == 1.0
    assert table["score"].idxmax() == "scalping"


def test_unavailable_modes_are_reported_not_scored() -> None:
    config = ModesConfig()
    minutes = minute_candles(2e-4, 5e-4, 5_000.0, MINUTES, seed=1)
    hourly = candles_for_modes(minutes, "1m", config)["1h"]
    choice = select_mode(candles_for_modes(hourly, "1h", config), config, COSTS)
    assert choice.mode == "swing"
    table = choice.table()
    assert np.isnan(table.loc["scalping", "score"])
    assert "needs 241 1m bars, has 0" in table.loc["scalping", "note"]


def test_no_scorable_mode_uses_the_default_or_fails_clearly() -> None:
    assert select_mode({}, ModesConfig(default="swing"), COSTS).mode == "swing"
    with pytest.raises(DataError, match="no mode can be scored"):
        select_mode({}, ModesConfig(), COSTS)


def test_regime_labels_are_causal_and_known() -> None:
    candles = minute_candles(0.0, 1e-3, 100.0, 1500, seed=3)
    config = RegimeConfig(trend_window=30, vol_window=10, vol_rank_window=100)
    labels = regime_labels(candles, config)
    assert set(labels.unique()) <= {*REGIMES, UNKNOWN_REGIME}
    assert (labels.iloc[:109] == UNKNOWN_REGIME).all() and labels.iloc[109] != UNKNOWN_REGIME
    prefix = regime_labels(candles.iloc[:900], config)
    pd.testing.assert_series_equal(prefix, labels.iloc[:900])


def test_regime_labels_see_trend_and_volatility() -> None:
    calm = minute_candles(0.0, 1e-4, 100.0, 600, seed=4)
    wild = minute_candles(3e-3, 5e-3, 100.0, 600, seed=5)
    wild.index = calm.index[-1] + pd.Timedelta(minutes=1) + (wild.index - wild.index[0])
    wild[["open", "high", "low", "close"]] *= calm["close"].iloc[-1] / 100
    both = pd.concat([calm, wild])
    config = RegimeConfig(trend_window=50, vol_window=20, vol_rank_window=400)
    labels = regime_labels(both, config)
    assert (labels.iloc[660:760] == "trend_high").all()  # a strong drift, volatility jumped
    assert not labels.iloc[420:600].str.startswith("trend").all()


def test_mode_settings_apply_to_signal_and_risk_configs() -> None:
    config = ModesConfig()
    scalping = config.modes["scalping"].model_copy(
        update={
            "signal": SignalOverride(long_threshold=0.6),
            "bands": (Band(min_prob=0.6, multiple=1),),
        }
    )
    signal = mode_signal_config(SignalConfig(), scalping)
    assert signal.long_threshold == 0.6 and len(signal.bands) == 1
    risk = mode_risk_config(RiskConfig(), scalping)
    assert risk.sizing.risk_pct == 0.0025 and risk.limits.max_trades_per_day == 40
