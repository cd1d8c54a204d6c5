"""Stress scenarios: valid candles, determinism, intended effect; the comparison table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitrader.analytics.scenarios import (
    SCENARIOS,
    compare_scenarios,
    flash_crash,
    gaps,
    low_liquidity,
    make_scenario,
    vol_spike,
)
from aitrader.engine.result import BacktestResult
from aitrader.errors import ConfigError, DataError


def assert_valid(candles: pd.DataFrame) -> None:
    """OHLC invariants: positive finite prices, high/low bracket open and close, volume ≥ 0."""
    prices = candles[["open", "high", "low", "close"]].to_numpy()
    assert np.isfinite(prices).all() and (prices > 0).all()
    body_high = np.maximum(candles["open"], candles["close"])
    body_low = np.minimum(candles["open"], candles["close"])
    assert (candles["high"] >= body_high * (1 - 1e-12)).all()
    assert (candles["low"] <= body_low * (1 + 1e-12)).all()
    assert (candles["volume"] >= 0).all()


@pytest.fixture(scope="module")
def btc(btc_1h: pd.DataFrame) -> pd.DataFrame:
    return btc_1h.iloc[:3000]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(SCENARIOS)),
    seed=st.integers(0, 2**32 - 1),
    start=st.integers(0, 2500),
    length=st.integers(30, 400),  # the default flash crash needs 26 bars
)
def test_every_scenario_keeps_candles_valid_and_input_untouched(
    btc: pd.DataFrame, name: str, seed: int, start: int, length: int
) -> None:
    original = btc.iloc[start : start + length]
    before = original.copy()
    scenario = make_scenario(name, original, seed=seed)
    assert_valid(scenario.candles)
    pd.testing.assert_frame_equal(original, before)
    assert scenario.candles.index.equals(original.index)
    assert scenario.window[0] <= scenario.window[1]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    depth=st.floats(0.01, 0.99),
    recovery=st.integers(0, 50),
    factor=st.floats(0.1, 10.0),
    max_gap=st.floats(0.01, 0.95),
    seed=st.integers(0, 1000),
)
def test_extreme_parameters_stay_valid(
    btc: pd.DataFrame, depth: float, recovery: int, factor: float, max_gap: float, seed: int
) -> None:
    data = btc.iloc[:300]
    assert_valid(flash_crash(data, depth=depth, recovery_bars=recovery, seed=seed).candles)
    assert_valid(vol_spike(data, factor=factor, seed=seed).candles)
    assert_valid(gaps(data, count=10, max_gap=max_gap, seed=seed).candles)


def test_scenarios_are_deterministic(btc: pd.DataFrame) -> None:
    for name in SCENARIOS:
        a, b = make_scenario(name, btc, seed=3), make_scenario(name, btc, seed=3)
        pd.testing.assert_frame_equal(a.candles, b.candles)
        assert a.window == b.window
    assert not make_scenario("gap", btc, seed=3).candles.equals(
        make_scenario("gap", btc, seed=4).candles
    )


def test_flash_crash_depth_and_recovery(btc: pd.DataFrame) -> None:
    sc = flash_crash(btc, depth=0.4, recovery_bars=10, at=1000)
    ratio = sc.candles["close"] / btc["close"]
    assert ratio.iloc[1000] == pytest.approx(0.6)
    assert ratio.iloc[1010] == pytest.approx(1.0)
    assert (ratio.iloc[1001:1010].diff().dropna() > 0).all()  # climbing back
    assert ratio.drop(ratio.index[1000:1010]).eq(1.0).all()
    assert sc.candles["open"].iloc[1000] == btc["open"].iloc[1000]  # the crash is inside the bar
    assert sc.candles["low"].iloc[1000] <= 0.6 * btc["low"].iloc[1000] + 1e-9
    assert sc.window == (btc.index[1000], btc.index[1010])


def test_low_liquidity_scales_volume_and_spread(btc: pd.DataFrame) -> None:
    sc = low_liquidity(btc, volume_factor=0.2, spread_multiplier=4.0, min_spread_bps=8.0)
    np.testing.assert_allclose(sc.candles["volume"], btc["volume"] * 0.2)
    pd.testing.assert_frame_equal(sc.candles[["open", "close"]], btc[["open", "close"]])
    assert sc.spread_bps(0.0) == 8.0 and sc.spread_bps(5.0) == 20.0
    part = low_liquidity(btc, volume_factor=0.5, bars=100, start=200)
    changed = part.candles["volume"] != btc["volume"]
    assert changed.sum() <= 100 and not changed.iloc[:200].any() and not changed.iloc[300:].any()


def test_gaps_jump_between_bars(btc: pd.DataFrame) -> None:
    sc = gaps(btc, count=4, max_gap=0.2, seed=11)
    ratio = (sc.candles["close"] / btc["close"]).to_numpy()
    jumps = np.flatnonzero(np.abs(np.diff(ratio)) > 1e-9) + 1
    assert len(jumps) == 4
    step = ratio[jumps] / ratio[jumps - 1] - 1
    assert ((np.abs(step) >= 0.1 - 1e-12) & (np.abs(step) <= 0.2 + 1e-12)).all()
    opens = (sc.candles["open"] / btc["open"]).to_numpy()
    np.testing.assert_allclose(opens[jumps], ratio[jumps])  # the whole bar moved: a gap


def test_vol_spike_scales_volatility_in_window(btc: pd.DataFrame) -> None:
    sc = vol_spike(btc, factor=3.0, bars=500, start=1000)
    old = np.diff(np.log(btc["close"].to_numpy()))
    new = np.diff(np.log(sc.candles["close"].to_numpy()))
    window = slice(999, 1499)  # log returns of bars 1000..1499
    assert new[window].std() == pytest.approx(3 * old[window].std(), rel=1e-9)
    assert new[window].mean() == pytest.approx(old[window].mean(), rel=1e-9)
    np.testing.assert_allclose(new[:999], old[:999])
    np.testing.assert_allclose(new[1499:], old[1499:])


def test_bad_parameters_are_config_errors(btc: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="unknown scenario"):
        make_scenario("meteor", btc)
    with pytest.raises(ConfigError):
        flash_crash(btc, depth=1.5)
    with pytest.raises(ConfigError):
        low_liquidity(btc, volume_factor=0)
    with pytest.raises(ConfigError, match="does not fit"):
        vol_spike(btc, bars=100, start=2950)
    with pytest.raises(DataError, match="column"):
        gaps(btc.drop(columns="volume"))


def test_compare_scenarios_side_by_side(
    btc: pd.DataFrame, replay: Callable[..., BacktestResult]
) -> None:
    base = replay(btc, "1h")
    stressed = {name: replay(make_scenario(name, btc, seed=5).candles, "1h") for name in SCENARIOS}
    crashed = replay(flash_crash(btc, depth=0.9, recovery_bars=2000, at=500).candles, "1h")
    hold = crashed.benchmarks["buy-and-hold"]  # always invested: takes the whole crash
    stressed["held-through-crash"] = dataclasses.replace(crashed, equity=hold, name="held")
    table = compare_scenarios(base, stressed, ruin_floor=0.5)
    assert list(table.index) == ["base", *SCENARIOS, "held-through-crash"]
    assert table.loc["base", "fills_missed"] == 0 and not table.loc["base", "ruined"]
    assert table.loc["base", "final_equity"] == pytest.approx(base.equity.iloc[-1])
    assert table["max_drawdown"].between(0, 1).all()
    assert table.loc["held-through-crash", "ruined"]
    assert table.loc["held-through-crash", "max_drawdown"] > 0.85
    for value in table["recovery_bars"]:
        assert value is None or isinstance(value, int)


def test_fill_counts_from_the_fills_table(
    btc: pd.DataFrame, replay: Callable[..., BacktestResult]
) -> None:
    base = replay(btc.iloc[:1000], "1h")
    fills = base.fills.copy()
    split = fills.iloc[[0]].assign(time=fills["time"].iloc[0] + pd.Timedelta(hours=1))
    thinner = pd.concat([fills.iloc[:-3], split]).reset_index(drop=True)
    table = compare_scenarios(base, {"thin": dataclasses.replace(base, fills=thinner)})
    assert (
        table.loc["base", "orders_filled"] == len(fills) and table.loc["base", "orders_split"] == 0
    )
    assert table.loc["thin", "orders_filled"] == len(fills) - 3
    assert table.loc["thin", "orders_split"] == 1 and table.loc["thin", "fills_missed"] == 3
    with pytest.raises(ConfigError):
        compare_scenarios(base, {}, ruin_floor=1.5)
