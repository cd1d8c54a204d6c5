"""A run that ends without a trade says why: the strategy never asked, the risk manager refused
every order, or (a model) its tuned decision trades no side (tests/models/test_cli_models.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions
from aitrader.engine.config import BrokerConfig
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.strategy import Context, Strategy
from aitrader.strategy.run import RunSpec, backtest_strategy, no_trades_reason


class Never(Strategy):
    name = "idle"
    window = 1

    def on_bar(self, ctx: Context) -> float | None:
        return None


class LongNoStop(Strategy):
    name = "long-no-stop"
    window = 1

    def on_bar(self, ctx: Context) -> float | None:
        return 0.5


@pytest.fixture(scope="module")
def hours() -> dict[str, pd.DataFrame]:
    return {"BTC/USD": load_sample("BTC-USD-1h").iloc[:500]}


def run(strategy: Strategy, data: dict[str, pd.DataFrame], require_stop: bool) -> str | None:
    risk = RiskConfig(limits=LimitsConfig(require_stop=require_stop))
    spec = RunSpec(BrokerConfig(), risk, RunOptions(timeframe="1h", benchmarks=False), start=10)
    return no_trades_reason(strategy, backtest_strategy(strategy, data, Settings(), spec))


def test_a_strategy_that_never_asks_is_named(hours: dict[str, pd.DataFrame]) -> None:
    assert run(Never(), hours, True) == "strategy idle asked for no position in the 490 traded bars"


def test_risk_manager_refusing_every_order_is_named(hours: dict[str, pd.DataFrame]) -> None:
    reason = run(LongNoStop(), hours, True)
    assert reason is not None and reason.startswith("the risk manager rejected all ")
    assert reason.endswith("of its orders (most: entry without a stop price (require_stop))")


def test_a_run_that_traded_has_no_reason(hours: dict[str, pd.DataFrame]) -> None:
    assert run(LongNoStop(), hours, False) is None
