"""Signals: band edges, EV gate arithmetic with fees, overrides, one bar = one row of arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aitrader.config import CostsConfig
from aitrader.strategy.config import Band, SignalConfig, SignalOverride
from aitrader.strategy.signals import (
    SignalInputs,
    band_multiple,
    decide_bar,
    expected_value,
    generate,
    resolve,
    round_trip_cost,
)

COSTS = CostsConfig(taker_fee=0.001, maker_fee=0.0005, slippage_bps=2.0)  # round trip 0.24 %


def run(
    p_up: list[float],
    config: SignalConfig | None = None,
    p_down: np.ndarray | None = None,
    regimes: np.ndarray | pd.Series | None = None,
) -> np.ndarray:
    """Targets with wide moves (10 % up or down) so the EV gate never binds."""
    inputs = SignalInputs(np.array(p_up), 0.1, 0.1, p_down=p_down, regimes=regimes)
    return generate(inputs, config or SignalConfig(), COSTS).target


def test_band_edges() -> None:
    p = np.array([0.5499, 0.55, 0.6499, 0.65, 0.7999, 0.80, 0.95])
    bands = SignalConfig().bands
    np.testing.assert_array_equal(band_multiple(p, bands), [0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(run(list(p)), [0, 1, 1, 2, 2, 3, 3])


def test_shorts_use_the_down_probability_and_can_be_disabled() -> None:
    np.testing.assert_array_equal(run([0.3, 0.44, 0.46]), [-2, -1, 0])
    np.testing.assert_array_equal(run([0.3], SignalConfig(allow_short=False)), [0])
    # 3 classes: the win probability is P(down) among the moves, the neutral rest is no move
    # (0.7 / 0.9 = 0.78, 0.5 / 0.7 = 0.71, 0.35 / 0.65 = 0.54)
    three_class = run([0.2, 0.2, 0.3], p_down=np.array([0.7, 0.5, 0.35]))
    np.testing.assert_array_equal(three_class, [-2, -2, 0])


def test_three_class_ev_is_net_of_the_neutral_class() -> None:
    """P(up) 0.3, P(down) 0.2, neutral 0.5; moves of 2 % either way: EV of a long is
    0.3·2 % − 0.2·2 % − 0.24 % = −0.04 % (the neutral half earns nothing), of 3 % moves +0.06 %."""
    flat = decide_bar(SignalInputs(0.3, 0.02, 0.02, p_down=0.2), SignalConfig(), COSTS)
    assert (flat.side, flat.reason, flat.p_win) == (0, "expected value below margin", 0.6)
    assert flat.ev == pytest.approx(-0.0004)
    long = decide_bar(SignalInputs(0.3, 0.03, 0.03, p_down=0.2), SignalConfig(), COSTS)
    assert (long.side, long.multiple, long.ev) == (1, 1.0, pytest.approx(0.0006))
    short = decide_bar(SignalInputs(0.2, 0.03, 0.03, p_down=0.3), SignalConfig(), COSTS)
    assert (short.side, short.ev) == (-1, pytest.approx(0.0006))


def test_threshold_above_the_first_band_keeps_small_probabilities_flat() -> None:
    config = SignalConfig(long_threshold=0.6)
    np.testing.assert_array_equal(run([0.58, 0.6, 0.66], config), [0, 1, 2])


def test_round_trip_cost_maker_and_taker() -> None:
    assert round_trip_cost(COSTS) == pytest.approx(COSTS.round_trip) == pytest.approx(0.0024)
    assert round_trip_cost(COSTS, "maker", "taker") == pytest.approx(0.0005 + 0.0012)
    assert round_trip_cost(COSTS, "maker", "maker") == pytest.approx(0.001)


def test_ev_gate_arithmetic_with_fees() -> None:
    # 0.6·1 % − 0.4·1 % − 0.24 % = −0.04 %: no trade; with a 1.2 % win: +0.08 %: trade.
    assert float(expected_value(0.6, 0.01, 0.01, 0.0024)) == pytest.approx(-0.0004)
    losing = decide_bar(SignalInputs(0.6, 0.01, 0.01), SignalConfig(), COSTS)
    assert (losing.side, losing.reason) == (0, "expected value below margin")
    assert losing.ev == pytest.approx(-0.0004)
    winning = decide_bar(SignalInputs(0.6, 0.012, 0.01), SignalConfig(), COSTS)
    assert (winning.side, winning.multiple, winning.ev) == (1, 1.0, pytest.approx(0.0008))
    margin = decide_bar(SignalInputs(0.6, 0.012, 0.01), SignalConfig(min_ev=0.001), COSTS)
    assert margin.side == 0
    maker = SignalConfig(entry_liquidity="maker")  # cheaper entry: 0.6·1 % − 0.4 % − 0.17 % > 0
    assert decide_bar(SignalInputs(0.6, 0.01, 0.01), maker, COSTS).side == 1


def test_per_regime_overrides_per_bar() -> None:
    config = SignalConfig(
        regime_overrides={
            "range_high": SignalOverride(long_threshold=0.7),
            "trend_low": SignalOverride(min_ev=0.05),
        }
    )
    regimes = np.array(["trend_normal", "range_high", "trend_low", "unknown"])
    np.testing.assert_array_equal(run([0.62] * 4, config, regimes=regimes), [1, 0, 0, 1])
    bar = decide_bar(SignalInputs(0.62, 0.05, 0.01, regimes="range_high"), config, COSTS)
    assert (bar.side, bar.reason) == (0, "below threshold")


def test_symbol_timeframe_and_regime_precedence() -> None:
    config = SignalConfig(
        overrides={
            "BTC/USDT": SignalOverride(long_threshold=0.6, min_ev=0.001),
            "BTC/USDT:1h": SignalOverride(long_threshold=0.65),
        },
        regime_overrides={"range_low": SignalOverride(long_threshold=0.75)},
    )
    assert resolve(config).long_threshold == 0.55
    assert resolve(config, "BTC/USDT").long_threshold == 0.6
    btc_1h = resolve(config, "BTC/USDT", "1h")
    assert (btc_1h.long_threshold, btc_1h.min_ev) == (0.65, 0.001)
    assert resolve(config, "BTC/USDT", "1h", "range_low").long_threshold == 0.75
    assert resolve(config, "ETH/USDT", "1h").long_threshold == 0.55


def test_one_bar_matches_the_vectorised_rows() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, 200)
    win = rng.uniform(0.001, 0.03, 200)
    arrays = generate(SignalInputs(p, win, 0.01), SignalConfig(), COSTS)
    for i in range(200):
        one = decide_bar(SignalInputs(float(p[i]), float(win[i]), 0.01), SignalConfig(), COSTS)
        assert (one.side, one.multiple) == (arrays.side[i], arrays.multiple[i])
        assert one.reason == arrays.reason_text(i)


def test_missing_probability_is_flat() -> None:
    out = generate(SignalInputs(np.array([np.nan, 0.9]), 0.05, 0.01), SignalConfig(), COSTS)
    assert out.reason_text(0) == "no probability" and out.side[1] == 1


def test_outer_band_override() -> None:
    config = SignalConfig().with_outer_band(0.9)
    assert config.bands[-1] == Band(min_prob=0.9, multiple=3.0)
    np.testing.assert_array_equal(run([0.85, 0.9], config), [2, 3])
    assert SignalConfig().with_outer_band(0.9, multiple=5).bands[-1].multiple == 5
    with pytest.raises(ValidationError):
        SignalConfig().with_outer_band(0.6)  # below the middle band


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="unknown regimes"):
        SignalConfig(regime_overrides={"bull": SignalOverride()})
    with pytest.raises(ValidationError, match="increasing"):
        SignalConfig(bands=(Band(min_prob=0.7, multiple=1), Band(min_prob=0.6, multiple=2)))
    with pytest.raises(ValidationError):
        SignalConfig.model_validate({"long_treshold": 0.6})


def test_regime_series_from_the_labeller_drives_the_overrides() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    regimes = pd.Series(["trend_low", "range_high", "unknown"], index=index)
    config = SignalConfig(regime_overrides={"range_high": SignalOverride(allow_long=False)})
    np.testing.assert_array_equal(run([0.7, 0.7, 0.7], config, regimes=regimes), [2, 0, 2])
