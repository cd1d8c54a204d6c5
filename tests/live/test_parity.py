"""Parity: the paper runtime replaying stored bars reproduces run_managed_backtest exactly, and
the ledger holds every order and fill of the run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from live_helpers import BROKER, RISK

from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.managed import ManagedResult, run_managed_backtest
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus
from aitrader.live.summary import RunSummary

OPTIONS = RunOptions(stop_loss=0.03, take_profit=0.06, benchmarks=False)


@pytest.fixture(scope="module")
def pair() -> dict[str, pd.DataFrame]:
    btc, eth = load_sample("BTC-USD-1h"), load_sample("ETH-USD-1h")
    index = btc.index.intersection(eth.index)[-3000:]
    return {"BTC/USD": btc.loc[index], "ETH/USD": eth.loc[index]}


def _targets(frames: dict[str, pd.DataFrame]) -> np.ndarray:
    columns = [
        sma_crossover_targets(f["close"].to_numpy(np.float64), 10, 30, short=True)
        for f in frames.values()
    ]
    return np.column_stack(columns)


def _paper(frames: dict[str, pd.DataFrame], targets: np.ndarray, ledger: Ledger) -> RunSummary:
    n = len(frames)
    feed = ArrayFeed(targets, np.full((1, n), np.nan), np.full((1, n), 0.03), np.full((1, n), 0.06))
    feeds = [ReplayFeed(symbol, candles, speed=0) for symbol, candles in frames.items()]
    runner = paper_runner(feeds, feed, ledger, BROKER, RISK)
    return asyncio.run(runner.run())


def _check_ledger(ledger: Ledger, managed: ManagedResult) -> None:
    fills = managed.result.fills
    recorded = ledger.fills()
    assert len(recorded) == len(fills)
    for column in ("symbol", "side", "qty", "price", "fee", "client_order_id", "reason"):
        assert recorded[column].tolist() == fills[column].tolist(), column
    orders = ledger.orders()
    assert {o.client_order_id for o in orders} == set(fills["client_order_id"]) | {
        o.client_order_id for o in orders if o.status is OrderStatus.CANCELLED
    }
    assert not [o for o in orders if o.status.is_open]
    curve = ledger.equity_curve()["equity"].to_numpy()
    assert np.array_equal(curve, managed.result.equity.to_numpy())


@pytest.mark.parametrize("symbols", [("BTC/USD",), ("BTC/USD", "ETH/USD")])
def test_paper_replay_reproduces_managed_backtest(
    pair: dict[str, pd.DataFrame], symbols: tuple[str, ...], tmp_path: Path
) -> None:
    frames = {s: pair[s] for s in symbols}
    targets = _targets(frames)
    managed = run_managed_backtest(frames, targets, None, BROKER, RISK, OPTIONS)
    with Ledger(tmp_path / "ledger.db") as ledger:
        summary = _paper(frames, targets, ledger)
        assert summary.bars == 3000 and summary.dropped == 0
        assert summary.equity == managed.result.equity.iloc[-1]  # bit-identical
        assert summary.fills == len(managed.result.fills) > 50
        assert set(managed.decisions["action"]) >= {"accept", "resize", "reject"}
        _check_ledger(ledger, managed)
        assert set(ledger.fills()["reason"]) >= {"signal", "stop_loss", "take_profit"}
