"""HTML report: files written, self-contained, decimated, and rendered by headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.analytics.report import (
    MAX_POINTS,
    ZERO_COST_BANNER,
    build_figures,
    decimate,
    write_report,
)
from aitrader.engine.result import BacktestResult

HERE = Path(__file__).parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Debian ``chromium`` binary, installed by ensure_chromium.sh when absent."""
    done = subprocess.run(
        ["sh", str(HERE / "ensure_chromium.sh")], capture_output=True, text=True, timeout=600
    )
    path = shutil.which("chromium")
    if done.returncode != 0 or path is None:
        pytest.fail(
            "headless Chromium is required for the report test and could not be installed "
            f"(apt-get install -y chromium): {done.stderr.strip() or done.stdout.strip()}"
        )
    return path


@pytest.fixture(scope="module")
def report(btc_result: BacktestResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the hourly BTC replay (52k bars, 1,000+ trades), log-scaled equity."""
    return write_report(btc_result, tmp_path_factory.mktemp("report"), log_scale=True)


def _browse(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra]
    done = subprocess.run(
        [*args, page.as_uri()], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_files_written(report: Path, btc_result: BacktestResult) -> None:
    out = report.parent
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["name"] == btc_result.name and "buy-and-hold" in metrics["benchmarks"]
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) == len(btc_result.trades) and list(trades.columns) == list(
        btc_result.trades.columns
    )
    equity = pd.read_csv(out / "equity.csv", index_col="timestamp")
    assert len(equity) == len(btc_result.equity)
    assert {"equity", "cash", "exposure", "drawdown", "benchmark_buy-and-hold"} <= set(equity)
    np.testing.assert_allclose(equity["equity"].to_numpy(), btc_result.equity.to_numpy())


def test_html_is_light_and_loads_plotly_from_its_own_folder(report: Path) -> None:
    text = report.read_text()
    sources = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"([^\"]+)\"", text)
    assert sources == ["plotly.min.js"]  # one shared bundle beside the page: opens offline
    bundle = (report.parent / "plotly.min.js").read_text()
    assert "plotly.js v" in bundle[:3000] and "plotly.js v" not in text
    assert "http://" not in text and "https://" not in text
    assert text.count("Plotly.newPlot") == 7
    assert len(text.encode()) < 2_000_000  # decimated data only (the 52k-bar run)
    assert "ZERO-COST" not in text
    assert re.search(r"<td>-?\d+\.\d\d%</td>", text)  # trade returns as percents
    for label in ("Sharpe (rf = 0)", "Max drawdown", "buy-and-hold", "Trades on price"):
        assert label in text


def test_every_trace_is_decimated(btc_result: BacktestResult) -> None:
    figures = build_figures(btc_result, log_scale=True)
    assert list(figures) == [
        "equity",
        "drawdown",
        "monthly",
        "rolling-sharpe",
        "distribution",
        "exposure",
        "trades",
    ]
    for key, fig in figures.items():
        for trace in fig.data:
            if trace.type == "scatter":
                assert 0 < len(trace.x) <= MAX_POINTS, key
    assert figures["equity"].layout.yaxis.type == "log"
    assert build_figures(btc_result)["equity"].layout.yaxis.type == "linear"


def test_decimate_keeps_extremes_and_ends() -> None:
    rng = np.random.default_rng(7)
    series = pd.Series(np.cumsum(rng.normal(size=100_000)))
    small = decimate(series, 5000)
    assert len(small) <= 5000 and small.index.is_monotonic_increasing
    assert small.max() == series.max() and small.min() == series.min()
    assert small.index[0] == 0 and small.index[-1] == len(series) - 1
    assert decimate(series.iloc[:100]) is not None and len(decimate(series.iloc[:100])) == 100


def test_zero_cost_run_is_labelled(
    btc_1h: pd.DataFrame, replay: Callable[..., BacktestResult], tmp_path: Path
) -> None:
    free = replay(btc_1h.iloc[:2000], "1h", cost=(0.0, 0.0))
    assert free.zero_cost
    text = write_report(free, tmp_path).read_text()
    assert ZERO_COST_BANNER in text and 'id="zero-cost"' in text
    assert json.loads((tmp_path / "metrics.json").read_text())["zero_cost"] is True


def test_report_without_trades_or_prices(
    btc_1h: pd.DataFrame, make_flat: Callable[..., BacktestResult], tmp_path: Path
) -> None:
    flat = dataclasses.replace(make_flat(btc_1h.iloc[:300], "1h"), prices=None)
    text = write_report(flat, tmp_path).read_text()
    assert "No trades." in text and text.count("Plotly.newPlot") == 6
    assert json.loads((tmp_path / "metrics.json").read_text())["sharpe"] is None


def test_chromium_renders_every_chart(chromium: str, report: Path, tmp_path: Path) -> None:
    dom = _browse(chromium, report, tmp_path, "--dump-dom").stdout
    assert dom.count('class="plot-container') == 7
    assert dom.count('class="main-svg"') >= 14  # plotly draws two layered SVGs per chart
    for key in ("equity", "drawdown", "monthly", "rolling-sharpe", "distribution", "exposure"):
        assert f'id="chart-{key}"' in dom
    shot = tmp_path / "report.png"
    _browse(chromium, report, tmp_path, f"--screenshot={shot}", "--window-size=1400,4000")
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1400, 4000)
        colours = image.convert("RGB").resize((140, 400)).getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 200  # charts drawn, not a blank page


def test_one_price_panel_per_symbol_with_its_own_markers() -> None:
    from aitrader.data.samples import load_sample
    from aitrader.engine.backtest import RunOptions, run_backtest
    from aitrader.engine.config import BrokerConfig

    btc, eth = (load_sample(n).iloc[-3000:] for n in ("BTC-USD-1h", "ETH-USD-1h"))
    index = btc.index.intersection(eth.index)
    data = {"BTC/USD": btc.loc[index], "ETH/USD": eth.loc[index]}
    flip = np.where((np.arange(len(index)) // 100) % 2 == 0, 0.4, 0.0)
    targets = pd.DataFrame({"BTC/USD": flip, "ETH/USD": flip[::-1].copy()}, index=index)
    result = run_backtest(data, targets, BrokerConfig(), RunOptions(timeframe="1h"))
    fig = build_figures(result)["trades"]
    assert [a.text for a in fig.layout.annotations] == ["BTC/USD", "ETH/USD"]
    for axis, symbol in (("y", "BTC/USD"), ("y2", "ETH/USD")):
        markers = [t for t in fig.data if t.yaxis == axis and t.mode == "markers"]
        prices = np.concatenate([np.asarray(t.y, dtype=float) for t in markers])
        own = data[symbol]
        assert (
            len(prices) and own["low"].min() <= prices.min() and prices.max() <= own["high"].max()
        )
    assert not [t for t in fig.data if t.name == "short entry"]


def test_chromium_renders_the_plot_command_page(chromium: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aitrader.cli import app

    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["plot", "sample:ETH-USD-1h", "-i", "ema:200,rsi:14", "-o", str(tmp_path / "p")]
    assert CliRunner().invoke(app, args, env=env).exit_code == 0
    dom = _browse(chromium, tmp_path / "p" / "plot.html", tmp_path, "--dump-dom").stdout
    assert dom.count('class="plot-container') == 1 and "candlestick" in dom
    assert dom.count('class="xtick"') > 3 or dom.count('class="main-svg"') >= 2
