"""Property tests of the kernel's accounting on random bars and random targets."""

from __future__ import annotations

import numpy as np
import talib
from engine_factories import candles
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.engine.backtest import RunOptions, market, run_backtest, simulate_arrays
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[tuple[float, float, float, float]], np.ndarray]:
    n = draw(st.integers(3, 40))
    moves = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
    rows, price = [], 100.0
    for move in moves:
        close = price * (1 + move)
        rows.append((price, max(price, close) * 1.01, min(price, close) * 0.99, close))
        price = close
    picks = draw(
        st.lists(st.sampled_from([np.nan, -1.0, -0.5, 0.0, 0.5, 1.0]), min_size=n, max_size=n)
    )
    return rows, np.array(picks)


OPTS = RunOptions(stop_loss=0.03, take_profit=0.04, benchmarks=False, timeframe="1h")


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_equity_is_cash_plus_marked_positions(case: tuple[list, np.ndarray]) -> None:
    rows, targets = case
    data = candles(rows, volume=50.0)
    equity, cash, _g, positions, fills, _t, _ = simulate_arrays(
        market(data), targets[:, None], BrokerConfig(leverage=2, max_total=2), OPTS
    )
    np.testing.assert_allclose(
        equity, cash + positions[:, 0] * data["close"].to_numpy(), rtol=1e-12
    )
    assert np.all(fills[:, 4] >= 0.0)


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_fills_inside_the_bar_before_slippage(case: tuple[list, np.ndarray]) -> None:
    rows, targets = case
    data = candles(rows)
    cfg = BrokerConfig(slippage_bps=0, impact=0, max_volume_share=None)
    result = run_backtest(data, targets, cfg, OPTS)
    bars = data.loc[result.fills["time"]]
    prices = result.fills["price"].to_numpy()
    assert np.all(prices >= bars["low"].to_numpy() - 1e-9)
    assert np.all(prices <= bars["high"].to_numpy() + 1e-9)
    assert np.all(result.fills["fee"] >= 0)


@settings(max_examples=30, deadline=None)
@given(scenario())
def test_no_trades_leaves_equity_unchanged(case: tuple[list, np.ndarray]) -> None:
    rows, _ = case
    result = run_backtest(candles(rows), np.full(len(rows), np.nan), BrokerConfig(), OPTS)
    assert len(result.fills) == 0 and len(result.trades) == 0
    assert np.all(result.equity.to_numpy() == 10_000.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(95, 105), min_size=1, max_size=80),
    st.integers(1, 20),
    st.integers(1, 30),
    st.booleans(),
)
def test_crossover_is_talib_sma_with_ties_flat(
    closes: list[int], fast: int, extra: int, short: bool
) -> None:
    close = np.array(closes, dtype=np.float64)  # few distinct prices: exact ties are common
    slow = fast + extra
    quick, lazy = talib.SMA(close, timeperiod=fast), talib.SMA(close, timeperiod=slow)
    got = sma_crossover_targets(close, fast, slow, short)
    known = ~np.isnan(quick) & ~np.isnan(lazy)
    assert np.isnan(got[~known]).all()
    low = -1.0 if short else 0.0
    assert np.array_equal(got[known], np.where(quick[known] > lazy[known], 1.0, low))
