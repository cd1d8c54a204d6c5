"""risk.sizing.method in the RiskManager: the one sizing rule every entry passes, on every path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aitrader.engine.managed import run_feed_backtest
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.errors import ConfigError
from aitrader.risk.config import LimitsConfig, RiskConfig, SizingConfig
from aitrader.risk.intents import OrderIntent, PortfolioSnapshot
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import JsonRiskStateStore

EQUITY = 10_000.0
T0 = pd.Timestamp("2024-01-01", tz="UTC")
LOOSE = LimitsConfig(risk_per_trade=0.5, max_position=5.0, max_total_exposure=5.0)


def manager(path: object = None, **sizing: object) -> RiskManager:
    config = RiskConfig(limits=LOOSE, sizing=SizingConfig.model_validate(sizing))
    if path is None:
        return RiskManager(config)
    return RiskManager(config, store=JsonRiskStateStore(path))  # type: ignore[arg-type]


def enter(risk: RiskManager, qty: float = 100.0, stop: float | None = 97.0) -> tuple[float, str]:
    decision = risk.check(OrderIntent(T0, "BTC", qty, 100.0, stop), PortfolioSnapshot(EQUITY))
    return decision.approved, decision.reason


def test_target_sizing_leaves_the_strategy_fraction_alone() -> None:
    assert enter(manager()) == (100.0, "within limits")


def test_fixed_fractional_loses_risk_pct_at_the_stop() -> None:
    qty, reason = enter(manager(method="fixed_fractional", risk_pct=0.01))
    assert qty == pytest.approx(100.0 / 3.0)  # 1 % of 10,000 over a 3.00 stop distance
    assert reason == "fixed-fractional sizing 1.00% to the stop"
    # the strategy's fraction stays a ceiling: a smaller wish is not scaled up
    assert enter(manager(method="fixed_fractional", risk_pct=0.01), qty=10.0)[0] == 10.0


def test_kelly_warms_up_on_fixed_fractional_then_uses_recent_trades(tmp_path: object) -> None:
    path = tmp_path / "risk.json"  # type: ignore[operator]
    risk = manager(path, method="kelly", kelly_fraction=0.5, kelly_cap=0.25, risk_pct=0.01)
    assert enter(risk)[0] == pytest.approx(100.0 / 3.0)
    for ret in (0.02, -0.01, 0.04, -0.01, 0.03):
        risk.record_trade(T0, ret * 1000, ret)
    kelly = 0.5 * (0.6 - 0.4 / 3.0)  # p = 0.6, payoff 0.03 / 0.01
    qty, reason = enter(risk)
    assert qty == pytest.approx(kelly * EQUITY / 100.0)
    assert reason == "kelly sizing (×0.5, last 50 trades)"
    # the returns survive a restart with the rest of the risk state
    again = manager(path, method="kelly", kelly_fraction=0.5, kelly_cap=0.25, risk_pct=0.01)
    assert again.state.trade_returns == (0.02, -0.01, 0.04, -0.01, 0.03)
    assert enter(again)[0] == pytest.approx(kelly * EQUITY / 100.0)


def test_vol_target_sizes_from_the_closes_seen() -> None:
    risk = manager(method="vol_target", target_vol=0.01, vol_window=4)
    assert risk.volatility is not None
    assert enter(risk)[0] == 0.0  # no volatility estimate yet: no entry
    for close in (100.0, 102.0, 100.0, 102.0, 100.0):
        risk.observe_prices({"BTC": close})
    sigma = math.sqrt(np.mean(np.log([1.02, 1 / 1.02, 1.02, 1 / 1.02]) ** 2))
    qty, reason = enter(risk)
    assert qty == pytest.approx(0.01 / sigma * EQUITY / 100.0)
    assert reason == "vol-target sizing 1.00% per bar"


def test_vol_target_refuses_the_research_only_garch_forecast() -> None:
    with pytest.raises(ConfigError, match="vol_method must be 'realised'"):
        manager(method="vol_target", vol_method="garch")


def test_sizing_applies_on_the_managed_backtest_path() -> None:
    index = pd.date_range(T0, periods=60, freq="1h")
    close = 100.0 * np.exp(np.cumsum(np.tile([0.01, -0.01], 30)))
    data = pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0},
        index=index,
    )
    fraction = np.full((60, 1), np.nan)
    fraction[30] = 1.0
    none = np.full((1, 1), np.nan)
    feed = ArrayFeed(fraction, none, np.full((1, 1), 0.05), none)
    risk = RiskConfig(limits=LOOSE, sizing=SizingConfig(method="vol_target", target_vol=0.005))
    run = run_feed_backtest(data, feed, risk=risk)
    decision = run.decisions.iloc[0]
    assert decision["action"] == "resize"
    assert decision["reason"] == "vol-target sizing 0.50% per bar"
    assert decision["approved_target"] == pytest.approx(0.5, rel=1e-6)  # 0.5 % / 1 % per bar
