"""The kill switch and counters persist across a restart (a new RiskManager reloads them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.errors import ConfigError
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import OrderIntent, PortfolioSnapshot
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import JsonRiskStateStore, RiskState

T0 = pd.Timestamp("2024-03-01 12:00", tz="UTC")


def entry() -> OrderIntent:
    return OrderIntent(T0, "BTC/USDT", 1.0, 100.0, 99.0)


def test_kill_switch_survives_a_restart_until_reset(tmp_path: Path) -> None:
    config = RiskConfig(state_path=tmp_path / "risk" / "state.json")
    first = RiskManager(config)
    first.engage_kill_switch(T0, "operator")
    del first
    restarted = RiskManager(config)
    assert restarted.kill_switch_engaged
    assert restarted.state.kill_reason == "operator" and restarted.state.kill_time == T0
    assert restarted.check(entry(), PortfolioSnapshot(10_000.0)).action == "reject"
    restarted.reset_kill_switch(T0)
    again = RiskManager(config)
    assert not again.kill_switch_engaged
    assert again.check(entry(), PortfolioSnapshot(10_000.0)).action == "accept"


def test_drawdown_kill_and_peak_survive_a_restart(tmp_path: Path) -> None:
    config = RiskConfig(
        state_path=tmp_path / "state.json",
        limits=LimitsConfig(max_drawdown=0.2, drawdown_reduce_from=0.1, max_daily_loss=0.5),
    )
    rm = RiskManager(config)
    rm.update_equity(T0, 10_000.0)
    rm.update_equity(T0 + pd.Timedelta(hours=1), 7_900.0)
    restarted = RiskManager(config)
    assert restarted.kill_switch_engaged
    assert restarted.state.peak_equity == 10_000.0


def test_state_file_is_replaced_atomically(tmp_path: Path) -> None:
    store = JsonRiskStateStore(tmp_path / "state.json")
    cooled = RiskState(cooldown_until=T0, consecutive_losses=2, day="2024-03-01")
    store.save(cooled)
    store.save(RiskState(kill_switch=True, kill_reason="x", kill_time=T0))
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left behind
    assert store.load() == RiskState(kill_switch=True, kill_reason="x", kill_time=T0)
    assert RiskState.from_json(cooled.to_json()) == cooled


def test_missing_file_is_a_fresh_state_and_a_corrupt_one_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert JsonRiskStateStore(path).load() is None
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"state\.json"):
        RiskManager(RiskConfig(state_path=path))
