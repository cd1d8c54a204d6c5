"""One decision path: the event-driven engine and the compiled kernel agree exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine, replay
from aitrader.engine.policy import TargetPolicy
from aitrader.engine.sweep import SweepGrid, sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair() -> dict[str, pd.DataFrame]:
    btc, eth = load_sample("BTC-USD-1h"), load_sample("ETH-USD-1h")
    index = btc.index.intersection(eth.index)[:6000]
    return {"BTC/USD": btc.loc[index], "ETH/USD": eth.loc[index]}


def _compare(candles: dict[str, pd.DataFrame], targets: np.ndarray, cfg: BrokerConfig) -> None:
    symbols = list(candles)
    brackets = np.zeros((1, len(symbols), 2))
    brackets[0, :] = [0.03, 0.06]
    opts = RunOptions(stop_loss=0.03, take_profit=0.06, benchmarks=False)
    fast = run_backtest(candles, pd.DataFrame(targets, columns=symbols), cfg, opts)
    policy = TargetPolicy(symbols, targets, brackets)
    slow = Engine(policy, SimBroker(symbols, cfg)).run(replay(candles))
    assert np.array_equal(np.array(slow.equity), fast.equity.to_numpy())
    assert np.array_equal(np.array(slow.cash), fast.cash.to_numpy())
    got = pd.DataFrame(
        {
            "qty": [abs(f.qty) for f in slow.fills],
            "price": [f.price for f in slow.fills],
            "fee": [f.fee for f in slow.fills],
            "client_order_id": [f.client_order_id for f in slow.fills],
        }
    )
    pd.testing.assert_frame_equal(got, fast.fills[list(got.columns)], check_exact=True)


def test_engine_matches_kernel_single_symbol(pair: dict[str, pd.DataFrame]) -> None:
    candles = {"BTC/USD": pair["BTC/USD"]}
    targets = sma_crossover_targets(candles["BTC/USD"]["close"].to_numpy(), short=True)
    cfg = BrokerConfig(initial_cash=1e6, spread_bps=4, max_volume_share=0.2)
    _compare(candles, targets[:, None], cfg)


def test_engine_matches_kernel_levered_portfolio(pair: dict[str, pd.DataFrame]) -> None:
    targets = np.column_stack(
        [
            sma_crossover_targets(f["close"].to_numpy(), 5, 20, short=True) * 1.5
            for f in pair.values()
        ]
    )
    cfg = BrokerConfig(leverage=5, max_position=1.5, max_total=2.5, fill_at="close")
    _compare(pair, targets, cfg)


def test_deterministic_bit_identical(pair: dict[str, pd.DataFrame]) -> None:
    targets = pd.DataFrame(
        {s: sma_crossover_targets(f["close"].to_numpy()) / 2 for s, f in pair.items()}
    )
    runs = [run_backtest(pair, targets) for _ in range(2)]
    assert runs[0].equity.to_numpy().tobytes() == runs[1].equity.to_numpy().tobytes()
    pd.testing.assert_frame_equal(runs[0].fills, runs[1].fills, check_exact=True)
    pd.testing.assert_frame_equal(runs[0].trades, runs[1].trades, check_exact=True)
    assert set(runs[0].benchmarks) == {"buy_and_hold", "sma_crossover"}


def test_sweep_rows_equal_single_backtests(pair: dict[str, pd.DataFrame]) -> None:
    btc = pair["BTC/USD"]
    grid = SweepGrid(fast=(5, 10), slow=(30, 50), stop_loss=(0.02,), take_profit=(np.nan, 0.05))
    table = sweep(btc, grid)
    assert len(table) == 8
    for row in table.itertuples():
        targets = sma_crossover_targets(btc["close"].to_numpy(), row.fast, row.slow)
        opts = RunOptions(stop_loss=row.stop_loss, take_profit=row.take_profit, benchmarks=False)
        single = run_backtest(btc, targets, options=opts)
        assert row.final_equity == single.equity.iloc[-1]
        assert row.trades == len(single.trades)
