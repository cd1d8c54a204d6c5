"""The vectorised path's plumbing: candles reach the kernel without copies, result frames are
built when read (and a result still pickles), quiet bars are marked exactly as full steps."""

from __future__ import annotations

import pickle

import numpy as np
from engine_factories import candles, targets

from aitrader.engine.backtest import RunOptions, market, run_backtest, simulate_arrays
from aitrader.engine.config import BrokerConfig
from aitrader.engine.result import FILL_COLUMNS, TRADE_COLUMNS

ROWS = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 102.0, 99.5, 101.0),
    (101.0, 103.0, 100.5, 102.0),
    (102.0, 102.5, 96.0, 97.0),  # reaches a 3 % stop from ~101
    (97.0, 99.0, 96.5, 98.0),
    (98.0, 99.0, 97.0, 98.5),
    (98.5, 104.0, 98.0, 103.0),
    (103.0, 104.0, 102.0, 103.5),
]
OPTS = RunOptions(stop_loss=0.03, take_profit=0.5, benchmarks=False, timeframe="1h")
FREE = BrokerConfig.without_costs(max_volume_share=None, fill_at="close")


def test_one_symbol_candles_are_views_of_the_frame() -> None:
    data = candles(ROWS)
    mkt = market(data)
    assert mkt.shape == (8, 1)
    assert np.shares_memory(mkt.close, data["close"].to_numpy())
    assert not mkt.close.flags.writeable
    assert mkt.closes()["asset"].tolist() == data["close"].tolist()


def test_several_symbols_stack_each_column() -> None:
    a, b = candles(ROWS), candles([(2 * o, 2 * h, 2 * lo, 2 * c) for o, h, lo, c in ROWS])
    mkt = market({"A": a, "B": b})
    assert mkt.shape == (8, 2)
    assert mkt.close[3].tolist() == [97.0, 194.0]
    assert mkt.closes()["B"].iloc[-1] == 207.0


def test_stop_then_quiet_bars_then_reentry() -> None:
    """All in at bar 0's close (100), stopped at 97 in bar 3, flat (quiet bars) until half in
    at bar 5's close (98.5), all in at bar 6's close (103), marked at 103.5 at the end."""
    result = run_backtest(candles(ROWS), targets(8, {0: 1.0, 5: 0.5, 6: 1.0}), FREE, OPTS)
    fills = result.fills
    assert fills["price"].tolist() == [100.0, 97.0, 98.5, 103.0]
    assert fills["reason"].tolist() == ["signal", "stop_loss", "signal", "signal"]
    assert result.equity.iloc[3] == result.equity.iloc[4] == 9_700.0  # flat: the cash
    at_bar_6 = 4_850.0 + 4_850.0 / 98.5 * 103.0
    assert np.isclose(result.equity.iloc[-1], at_bar_6 / 103.0 * 103.5, rtol=1e-12)
    assert result.trades["exit_reason"].tolist() == ["stop_loss", "end"]
    assert list(result.fills.columns) == list(FILL_COLUMNS)
    assert list(result.trades.columns) == list(TRADE_COLUMNS)


def test_frames_are_built_when_read_and_the_result_pickles() -> None:
    result = run_backtest(candles(ROWS), targets(8, {0: 1.0, 5: 0.5}), FREE, OPTS)
    copy = pickle.loads(pickle.dumps(result))  # before any frame was read
    assert copy.fills.equals(result.fills)
    assert copy.trades.equals(result.trades)
    assert result.fills is result.fills  # built once, then kept
    assert result.fees_paid == 0.0


def test_last_positions_only_when_the_history_is_not_asked_for() -> None:
    mkt = market(candles(ROWS))
    t = targets(8, {0: 1.0, 5: 0.5})[:, None]
    every = simulate_arrays(mkt, t, FREE, OPTS)
    last = simulate_arrays(mkt, t, FREE, OPTS, positions=False)
    assert every[3].shape == (8, 1) and last[3].shape == (1, 1)
    assert last[3][0, 0] == every[3][-1, 0] == 4_850.0 / 98.5
    assert np.array_equal(every[0], last[0])
