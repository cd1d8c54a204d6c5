"""Cross-checks on the bundled BTC hourly data against backtesting.py and vectorbt.

SMA(10/30) long-only crossover, 0.1 % fees, no slippage, all-in sizing. Our tie rule (long while
fast > slow, flat on an exact tie) is expressed in both tools as state changes, so the three
engines see identical decisions; the bundled data has no exact ties anyway (asserted).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.features.indicators import sma

pytestmark = pytest.mark.slow
CASH = 100_000.0


def _config(fill_at: str) -> BrokerConfig:
    return BrokerConfig(
        initial_cash=CASH, slippage_bps=0, impact=0, max_volume_share=None, fill_at=fill_at
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return load_sample("BTC-USD-1h")


@pytest.fixture(scope="module")
def targets(btc: pd.DataFrame) -> np.ndarray:
    close = btc["close"].to_numpy()
    assert not np.any(sma(close, 10) == sma(close, 30))
    return sma_crossover_targets(close, 10, 30)


def test_matches_vectorbt_close_fills(btc: pd.DataFrame, targets: np.ndarray) -> None:
    import vectorbt as vbt

    ours = run_backtest(btc, targets, _config("close"), RunOptions(benchmarks=False))
    long = targets == 1.0
    before = np.concatenate([[False], long[:-1]])
    entries, exits = long & ~before, (targets == 0.0) & before
    close = pd.Series(btc["close"].to_numpy())
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001, init_cash=CASH)
    assert ours.equity.iloc[-1] == pytest.approx(pf.value().iloc[-1], rel=1e-6)
    assert len(ours.trades) == pf.trades.count()
    assert (~ours.trades["is_open"]).sum() == pf.trades.closed.count()


def test_matches_backtesting_py_next_open(btc: pd.DataFrame, targets: np.ndarray) -> None:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    decisions = np.nan_to_num(targets, nan=-1.0)

    class Crossover(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.target = self.I(lambda: decisions, name="target")

        def next(self) -> None:
            if self.target[-1] == 1.0 and not self.position:
                self.buy()
            elif self.target[-1] == 0.0 and self.position:
                self.position.close()

    ours = run_backtest(btc, targets, _config("open"), RunOptions(benchmarks=False))
    data = btc.rename(columns=str.capitalize).tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(
            data, Crossover, cash=CASH, commission=0.001, fractional_unit=1e-10
        ).run()
    assert ours.equity.iloc[-1] == pytest.approx(stats["Equity Final [$]"], rel=1e-6)
    closed = int((~ours.trades["is_open"]).sum())
    assert closed == stats["# Trades"]
    assert ours.trades["is_open"].iloc[-1]  # the last position is still open and marked
