"""``aitrader plot``: candlesticks, indicators, a run's trade markers and its profit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aitrader.analytics.plot import PlotInput, parse_indicators, price_figure, read_run
from aitrader.analytics.report import write_report
from aitrader.cli import app
from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report folder of a BTC run over the last 3,000 hourly bars (trades.csv, equity.csv)."""
    btc = load_sample("BTC-USD-1h").iloc[-3000:]
    target = np.where((np.arange(len(btc)) // 150) % 2 == 0, 0.5, 0.0)
    result = run_backtest({"BTC/USD": btc}, target, options=RunOptions(timeframe="1h"))
    out = tmp_path_factory.mktemp("run")
    write_report(result, out)
    return out


def test_cli_plot_with_indicators_trades_and_profit(tmp_path: Path, run_dir: Path) -> None:
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["plot", "sample:BTC-USD-1h", "-i", "sma:50,bb:20", "-i", "rsi:14"]
    result = runner.invoke(app, [*args, "--trades", str(run_dir), "--json"], env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    trades = pd.read_csv(run_dir / "trades.csv")
    assert payload["bars"] == 52521 and payload["candle"] == "1d"
    assert payload["trades"] == len(trades) > 5
    page = Path(payload["plot"]).read_text()
    assert (Path(payload["plot"]).parent / "plotly.min.js").is_file()
    for label in ("candlestick", "SMA(50)", "BB(20) upper", "RSI(14)", "Cumulative profit"):
        assert label in page
    assert len(page.encode()) < 2_000_000


def test_price_figure_keeps_trade_times_and_prices(run_dir: Path) -> None:
    btc = load_sample("BTC-USD-1h").iloc[-2400:]
    trades, equity = read_run(run_dir, "BTC/USD")
    data = PlotInput("btc", "BTC/USD", "1h", btc, parse_indicators(["ema:20"]), trades, equity)
    fig, step = price_figure(data)
    assert step == "1h"  # 2,400 bars fit
    entries = next(t for t in fig.data if t.name == "long entry")
    np.testing.assert_allclose(np.asarray(entries.y, float), trades["entry_price"].to_numpy())
    candles = next(t for t in fig.data if t.type == "candlestick")
    assert len(candles.x) == 2400


@pytest.mark.parametrize(
    "args,message",
    [
        (["-i", "vwap:3"], "unknown indicator"),
        (["-i", "sma:x"], "whole number"),
        (["--trades", "."], "no trades.csv"),
    ],
)
def test_plot_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    result = runner.invoke(app, ["plot", "sample:SPY-1d", *args], env=env)
    assert result.exit_code == 2 and message in result.output
