"""Hand-computed cases, checked to the cent."""

from __future__ import annotations

import numpy as np
import pytest
from engine_factories import candles, targets

from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.config import BrokerConfig

FLAT = (100.0, 100.0, 100.0, 100.0)
PLAIN = RunOptions(benchmarks=False, timeframe="1h")


def config(**kw: object) -> BrokerConfig:
    base = {"initial_cash": 10_000.0, "impact": 0.0, "max_volume_share": None}
    return BrokerConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_single_trade_with_fees_and_slippage() -> None:
    data = candles([FLAT, (100, 111, 99, 110), (110, 112, 108, 111)])
    result = run_backtest(data, targets(3, {0: 1.0, 1: 0.0}), config(), PLAIN)
    buy = 100 * 1.0002  # next open plus 2 bps
    qty = 10_000 / (buy * 1.001)  # all cash, 0.1 % taker fee included
    sell = 110 * (1 - 0.0002)
    cash = 10_000 - qty * buy - qty * buy * 0.001 + qty * sell - qty * sell * 0.001
    assert result.equity.iloc[-1] == pytest.approx(cash, abs=0.005)
    trade = result.trades.iloc[0]
    assert trade["pnl"] == pytest.approx(cash - 10_000, abs=0.005)
    assert trade["fees"] == pytest.approx(qty * (buy + sell) * 0.001, abs=0.005)
    assert trade["slippage"] == pytest.approx(qty * (buy - 100 + 110 - sell), abs=0.005)
    assert list(result.fills["side"]) == [1, -1]
    assert trade["bars_held"] == 1 and trade["exit_reason"] == "signal"


def test_fill_at_close_option() -> None:
    data = candles([FLAT, (100, 111, 99, 110), (110, 112, 108, 111)])
    result = run_backtest(data, targets(3, {0: 1.0}), config(fill_at="close"), PLAIN)
    assert result.fills["price"].iloc[0] == pytest.approx(100 * 1.0002)
    assert result.fills["time"].iloc[0] == data.index[0]


def test_stop_and_target_in_one_bar_takes_the_stop() -> None:
    data = candles([FLAT, FLAT, (100, 106, 94, 100)])
    opts = RunOptions(stop_loss=0.05, take_profit=0.05, benchmarks=False)
    result = run_backtest(data, targets(3, {0: 1.0}), config(slippage_bps=0), opts)
    qty = 10_000 / 100 / 1.001
    exit_fill = result.fills.iloc[-1]
    assert exit_fill["reason"] == "stop_loss" and exit_fill["price"] == pytest.approx(95.0)
    expected = 10_000 - qty * 100 * 1.001 + qty * 95 * 0.999
    assert result.equity.iloc[-1] == pytest.approx(expected, abs=0.005)


def test_sub_bars_resolve_the_order_of_events() -> None:
    data = candles([FLAT, FLAT, (100, 106, 94, 100)])
    minutes = candles([(100, 100, 100, 100)] * 180).set_axis(
        data.index[0] + np.arange(180) * np.timedelta64(1, "m")
    )
    minutes.iloc[125] = [100, 106, 100, 105, 1e9]  # target first, in the third hour
    minutes.iloc[130] = [100, 100, 94, 95, 1e9]
    opts = RunOptions(stop_loss=0.05, take_profit=0.05, sub_bars=minutes, benchmarks=False)
    result = run_backtest(data, targets(3, {0: 1.0}), config(slippage_bps=0), opts)
    exit_fill = result.fills.iloc[-1]
    assert exit_fill["reason"] == "take_profit" and exit_fill["liquidity"] == "maker"
    assert exit_fill["price"] == pytest.approx(105.0)


def test_gap_through_stop_fills_at_the_open() -> None:
    data = candles([FLAT, FLAT, (90, 92, 88, 91)])
    opts = RunOptions(stop_loss=0.05, benchmarks=False)
    result = run_backtest(data, targets(3, {0: 1.0}), config(slippage_bps=0), opts)
    assert result.fills["price"].iloc[-1] == pytest.approx(90.0)


def test_partial_fill_by_volume_share() -> None:
    data = candles([FLAT] * 4, volume=10.0)
    cfg = config(initial_cash=1_000.0, max_volume_share=0.5, slippage_bps=0)
    result = run_backtest(data, targets(4, {0: 1.0}), cfg, PLAIN)
    qtys = result.fills["qty"].to_numpy()
    # target 10 units, half the bar's volume (5) per bar; the second bar is capped by cash
    second = (1_000.0 - 5 * 100 * 1.001) / (100 * 1.001)
    np.testing.assert_allclose(qtys, [5.0, second])
    assert list(result.fills["time"]) == list(data.index[1:3])


def test_short_pnl() -> None:
    data = candles([FLAT, FLAT, (90, 90, 90, 90), (90, 90, 90, 90)])
    cfg = config(slippage_bps=0)
    result = run_backtest(data, targets(4, {0: -1.0, 2: 0.0}), cfg, PLAIN)
    qty = 10_000 / (100 * 1.001)
    pnl = qty * (100 - 90) - qty * 100 * 0.001 - qty * 90 * 0.001
    assert result.trades["side"].iloc[0] == -1
    assert result.trades["pnl"].iloc[0] == pytest.approx(pnl, abs=0.005)
    assert result.equity.iloc[-1] == pytest.approx(10_000 + pnl, abs=0.005)


def test_liquidation_at_the_maintenance_price() -> None:
    data = candles([FLAT, FLAT, (100, 100, 80, 85)])
    cfg = config(slippage_bps=0, leverage=10, max_position=10, max_total=10)
    result = run_backtest(data, targets(3, {0: 10.0}), cfg, PLAIN)
    qty = 10_000 * 10 / 100  # margin cap: 10 000 / (100 * (1/10 + 0.001)) is larger
    qty = min(qty, 10_000 / (100 * (0.1 + 0.001)))
    cash = 10_000 - qty * 100 * 1.001
    liq = -cash / (qty * (1 - 0.005))
    fill = result.fills.iloc[-1]
    assert fill["reason"] == "liquidation" and fill["price"] == pytest.approx(liq)
    equity = cash + qty * liq - qty * liq * 0.001
    assert result.equity.iloc[-1] == pytest.approx(equity, abs=0.005)
    assert result.trades["exit_reason"].iloc[0] == "liquidation"


def test_funding_payment() -> None:
    data = candles([FLAT, FLAT, FLAT, FLAT])
    funding = __import__("pandas").Series([0.001], index=[data.index[2]])
    opts = RunOptions(funding=funding, benchmarks=False)
    result = run_backtest(data, targets(4, {0: 1.0}), config(slippage_bps=0), opts)
    qty = 10_000 / (100 * 1.001)
    assert result.equity.iloc[1] - result.equity.iloc[2] == pytest.approx(qty * 100 * 0.001)
    assert result.trades["pnl"].iloc[0] == pytest.approx(
        -qty * 100 * 0.001 - qty * 100 * 0.001, abs=0.005
    )


def test_zero_cost_must_be_explicit() -> None:
    with pytest.raises(ValueError, match="zero_cost"):
        BrokerConfig(taker_fee=0, maker_fee=0, slippage_bps=0, impact=0)
    free = BrokerConfig.without_costs()
    data = candles([FLAT, FLAT])
    assert run_backtest(data, targets(2, {0: 1.0}), free, PLAIN).zero_cost
