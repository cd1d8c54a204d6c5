"""Sizing: hand-computed fixed fractional, fractional Kelly and volatility targeting."""

from __future__ import annotations

import numpy as np
import pytest

from aitrader.features.volatility import realized_vol
from aitrader.risk.config import SizingConfig
from aitrader.risk.sizing import (
    fixed_fractional,
    forecast_vol,
    kelly_fraction,
    kelly_from_trades,
    position_size,
    vol_target_fraction,
    win_rate_and_payoff,
)


def test_fixed_fractional_risks_the_given_share_of_equity() -> None:
    assert fixed_fractional(10_000, 0.01, 100.0, 95.0) == pytest.approx(20.0)
    assert fixed_fractional(10_000, 0.01, 100.0, 105.0) == pytest.approx(20.0)  # a short
    assert fixed_fractional(10_000, 0.01, 100.0, 100.0) == 0.0
    assert fixed_fractional(0.0, 0.01, 100.0, 95.0) == 0.0


def test_kelly_fraction_hand_computed_and_capped() -> None:
    assert kelly_fraction(0.6, 1.5, fraction=1.0, cap=1.0) == pytest.approx(0.6 - 0.4 / 1.5)
    assert kelly_fraction(0.6, 1.5, fraction=0.5, cap=1.0) == pytest.approx(0.5 * (0.6 - 0.4 / 1.5))
    assert kelly_fraction(0.6, 1.5, fraction=1.0, cap=0.1) == 0.1
    assert kelly_fraction(0.3, 1.0) == 0.0  # negative edge: no bet
    assert kelly_fraction(0.6, 0.0) == 0.0


def test_win_rate_and_payoff_of_recent_trades() -> None:
    trades = np.array([-0.5, 0.02, -0.01, 0.04, -0.01, 0.03])
    rate, payoff = win_rate_and_payoff(trades, window=5)  # the first trade is outside the window
    assert rate == pytest.approx(0.6)
    assert payoff == pytest.approx(0.03 / 0.01)


def test_kelly_from_trades_uses_fraction_and_cap() -> None:
    trades = np.array([0.02, -0.01, 0.04, -0.01, 0.03])
    config = SizingConfig(kelly_fraction=0.5, kelly_cap=0.25)
    assert kelly_from_trades(trades, config) == pytest.approx(0.5 * (0.6 - 0.4 / 3.0))
    assert kelly_from_trades(trades, SizingConfig(kelly_fraction=1.0, kelly_cap=0.3)) == 0.3
    assert kelly_from_trades(trades[:3], config) == 0.0  # too few trades to estimate


def test_vol_target_fraction() -> None:
    assert vol_target_fraction(0.02, 0.04, max_leverage=3.0) == pytest.approx(0.5)
    assert vol_target_fraction(0.02, 0.005, max_leverage=3.0) == 3.0
    assert vol_target_fraction(0.02, float("nan"), max_leverage=3.0) == 0.0


def test_position_size_methods_and_leverage_cap() -> None:
    base = SizingConfig(method="fixed_fractional", risk_pct=0.01)
    assert position_size(10_000, 100.0, 99.0, base) == pytest.approx(100.0)
    assert position_size(10_000, 100.0, 99.5, base) == pytest.approx(100.0)  # 200 → 1× cap
    levered = SizingConfig(method="fixed_fractional", risk_pct=0.01, max_leverage=3.0)
    assert position_size(10_000, 100.0, 99.5, levered) == pytest.approx(200.0)
    vol = SizingConfig(method="vol_target", target_vol=0.02)
    assert position_size(10_000, 100.0, 99.0, vol, vol=0.04) == pytest.approx(50.0)
    kelly = SizingConfig(method="kelly", kelly_fraction=0.5, kelly_cap=0.25)
    trades = np.array([0.02, -0.01, 0.04, -0.01, 0.03])
    expected = 0.5 * (0.6 - 0.4 / 3.0) * 10_000 / 100.0
    assert position_size(10_000, 100.0, 99.0, kelly, trade_returns=trades) == pytest.approx(
        expected
    )


def test_forecast_vol_realised_reuses_the_feature() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 200)))
    got = forecast_vol(close, SizingConfig(vol_window=20))
    np.testing.assert_allclose(got, realized_vol(close, 20), equal_nan=True)
