"""``aitrader plot``: candlesticks with indicators and a run's trades, plus its profit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings
from aitrader.errors import DataError


def plot_command(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="sample:NAME, EXCHANGE:SYMBOL:TF or a file path."),
    indicators: list[str] = typer.Option(  # noqa: B008
        [], "--indicators", "-i", help="sma:20, ema:50, bb:20, rsi:14, atr:14 (comma or repeat)."
    ),
    trades: Path | None = typer.Option(  # noqa: B008
        None,
        "--trades",
        help="A run folder (backtest --report DIR, the demo's): its trades "
        "and equity are drawn too.",
    ),
    start: str = typer.Option(None, "--start", help="First bar shown, UTC (2022-01-01)."),
    end: str = typer.Option(None, "--end", help="End of the range shown (exclusive), UTC."),
    out: Path | None = typer.Option(  # noqa: B008
        None, "--out", "-o", help="Folder for plot.html (default: DATA_DIR/plots/NAME)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Candlestick chart of a data set with indicators and trade markers, plus a profit chart.

    Long ranges are drawn as coarser candles (at most 2,500) built from the bars.

    Example: aitrader plot sample:BTC-USD-1h -i sma:50 --trades data/reports/demo
    """
    from aitrader.analytics.plot import PlotInput, parse_indicators, write_plot
    from aitrader.data.datasets import load_dataset
    from aitrader.data.store import Store

    cfg = settings(ctx)
    specs = parse_indicators(indicators)
    loaded = load_dataset(dataset, Store(cfg.data.dir))
    candles = _clip(loaded.candles, loaded.name, start, end)
    run, equity = _run(trades, loaded.symbol, candles)
    data = PlotInput(loaded.name, loaded.symbol, loaded.timeframe, candles, specs, run, equity)
    folder = out or Path(cfg.data.dir) / "plots" / loaded.name.replace(":", "_").replace("/", "-")
    path, step = write_plot(data, folder)
    result = {
        "plot": str(path),
        "bars": len(candles),
        "candle": step,
        "trades": 0 if run is None else len(run),
    }
    if as_json:
        emit_json(result)
    else:
        shown = "" if step == loaded.timeframe else f", shown as {step} candles"
        console.print(f"plot: [bold]{path}[/] ({len(candles):,} {loaded.timeframe} bars{shown})")


def _clip(candles: pd.DataFrame, name: str, start: str | None, end: str | None) -> pd.DataFrame:
    """The bars from ``--start`` up to ``--end`` (exclusive); none left is an error."""
    from aitrader.cli.data_download import parse_time

    low, high = parse_time(start, "--start"), parse_time(end, "--end")
    candles = candles[(candles.index >= low) if low is not None else slice(None)]
    candles = candles[(candles.index < high) if high is not None else slice(None)]
    if candles.empty:
        raise DataError(f"{name}: no bars between --start and --end")
    return candles


def _run(
    trades: Path | None, symbol: str, candles: pd.DataFrame
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The run folder's trades of ``symbol`` and its equity over the bars shown (none: None)."""
    from aitrader.analytics.plot import read_run

    run, equity = read_run(trades, symbol) if trades is not None else (None, None)
    if equity is not None:
        equity = equity[(equity.index >= candles.index[0]) & (equity.index <= candles.index[-1])]
    return run, equity
