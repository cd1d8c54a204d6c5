"""Candlestick charts with indicators and a run's trades, plus a profit chart (``aitrader plot``).

Long ranges are shown as coarser candles (``MAX_CANDLES`` at most: 52k hourly bars become daily
candles), built from the bars, never interpolated; indicators are computed on the original bars
and shown at each displayed candle's last bar. Trade markers keep their exact time and price.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from aitrader.analytics.report import (
    PLOTLY_JS,
    decimate,
    naive_utc,
    trade_markers,
    write_plotly_bundle,
)
from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import ConfigError, DataError
from aitrader.features import indicators as ind

MAX_CANDLES = 2500  # six years of daily candles
DISPLAY_STEPS = ("1m", "5m", "15m", "30m", "1h", "4h", "12h", "1d", "1w")
OVERLAYS = {"sma", "ema", "bb"}
PANELS = {"rsi", "atr"}
DEFAULT_PERIODS = {"sma": 20, "ema": 20, "bb": 20, "rsi": 14, "atr": 14}


@dataclass(frozen=True)
class Indicator:
    kind: str
    period: int

    @property
    def label(self) -> str:
        return f"{self.kind.upper()}({self.period})"


@dataclass(frozen=True)
class PlotInput:
    """What to draw: candles of one symbol, indicators, and optionally a run's trades/equity."""

    title: str
    symbol: str
    timeframe: str
    candles: pd.DataFrame
    indicators: tuple[Indicator, ...] = ()
    trades: pd.DataFrame | None = None
    equity: pd.DataFrame | None = None


def parse_indicators(values: list[str]) -> tuple[Indicator, ...]:
    """``sma:20,ema:50`` or repeated options → indicators; ConfigError names a bad one."""
    out = []
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        kind, _, period = item.lower().partition(":")
        if kind not in OVERLAYS | PANELS:
            known = ", ".join(sorted(OVERLAYS | PANELS))
            raise ConfigError(
                f"--indicators {item!r}: unknown indicator; use {known} (e.g. sma:20)"
            )
        if period and (not period.isdigit() or int(period) < 2):
            raise ConfigError(f"--indicators {item!r}: the period must be a whole number ≥ 2")
        out.append(Indicator(kind, int(period) if period else DEFAULT_PERIODS[kind]))
    return tuple(out)


def read_run(run_dir: Path, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Trades of ``symbol`` from a run folder's ``trades.csv`` and its ``equity.csv`` if any."""
    path = Path(run_dir) / "trades.csv"
    if not path.is_file():
        raise ConfigError(
            f"--trades {run_dir}: no trades.csv there (give a folder written by "
            "`aitrader backtest --report DIR` or the demo)"
        )
    trades = pd.read_csv(path)
    for column in ("entry_time", "exit_time"):
        trades[column] = pd.to_datetime(trades[column], utc=True, format="ISO8601")
    if "symbol" in trades and symbol in set(trades["symbol"]):
        trades = trades[trades["symbol"] == symbol]
    elif "symbol" in trades and trades["symbol"].nunique() > 1:
        found = ", ".join(sorted(map(str, trades["symbol"].unique())))
        raise DataError(f"{path}: no trades of {symbol} (it holds {found})")
    equity_path = Path(run_dir) / "equity.csv"
    equity = None
    if equity_path.is_file():
        equity = pd.read_csv(equity_path, index_col="timestamp")
        equity.index = pd.to_datetime(equity.index, utc=True, format="ISO8601")
    return trades, equity


def display_step(candles: pd.DataFrame, timeframe: str, max_candles: int = MAX_CANDLES) -> str:
    """The data's timeframe, or the finest coarser one that shows at most ``max_candles``."""
    span = candles.index[-1] - candles.index[0] if len(candles) else pd.Timedelta(0)
    base = timeframe_seconds(timeframe)
    for step in (timeframe, *DISPLAY_STEPS):
        seconds = timeframe_seconds(step)
        if seconds >= base and span.total_seconds() / seconds < max_candles:
            return step
    return "1w"


def coarser(candles: pd.DataFrame, step: str) -> pd.DataFrame:
    """OHLCV bars aggregated into ``step`` bins labelled by their open (empty bins dropped)."""
    rule = pd.Timedelta(seconds=timeframe_seconds(step))
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    out = candles.resample(rule, origin="epoch", label="left", closed="left").agg(agg)
    return out.dropna(subset=["open"])


def indicator_series(candles: pd.DataFrame, spec: Indicator) -> dict[str, pd.Series]:
    """Named series of one indicator on the original bars."""
    c = candles["close"].to_numpy(np.float64)
    h, lo = candles["high"].to_numpy(np.float64), candles["low"].to_numpy(np.float64)
    if spec.kind == "sma":
        values = {spec.label: ind.sma(c, spec.period)}
    elif spec.kind == "ema":
        values = {spec.label: ind.ema(c, spec.period)}
    elif spec.kind == "bb":
        upper, middle, lower = ind.bbands(c, spec.period)
        values = {f"BB({spec.period}) upper": upper, f"BB({spec.period}) lower": lower}
        values[f"BB({spec.period}) middle"] = middle
    elif spec.kind == "rsi":
        values = {spec.label: ind.rsi(c, spec.period)}
    else:
        values = {spec.label: ind.atr(h, lo, c, spec.period)}
    return {name: pd.Series(v, index=candles.index) for name, v in values.items()}


def _on_display(series: pd.Series, shown: pd.DataFrame, step: str, timeframe: str) -> pd.Series:
    if step == timeframe:
        return series
    rule = pd.Timedelta(seconds=timeframe_seconds(step))
    return (
        series.resample(rule, origin="epoch", label="left", closed="left")
        .last()
        .reindex(shown.index)
    )


def price_figure(data: PlotInput) -> tuple[go.Figure, str]:
    """Candles (+ overlays, trade markers), volume, and one panel per oscillator."""
    step = display_step(data.candles, data.timeframe)
    shown = data.candles if step == data.timeframe else coarser(data.candles, step)
    panels = [i for i in data.indicators if i.kind in PANELS]
    heights = [0.6, 0.15] + [0.25 / max(len(panels), 1)] * len(panels)
    fig = make_subplots(
        rows=2 + len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=heights
    )
    x = naive_utc(shown.index)
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=shown["open"],
            high=shown["high"],
            low=shown["low"],
            close=shown["close"],
            name=f"{data.symbol} {step}",
        ),
        1,
        1,
    )
    for spec in data.indicators:
        row = 1 if spec.kind in OVERLAYS else 3 + panels.index(spec)
        for name, series in indicator_series(data.candles, spec).items():
            values = _on_display(series, shown, step, data.timeframe)
            fig.add_trace(
                go.Scatter(x=x, y=values.to_numpy(), name=name, mode="lines", line={"width": 1}),
                row,
                1,
            )
    fig.add_trace(go.Bar(x=x, y=shown["volume"], name="volume", marker={"color": "#9ab"}), 2, 1)
    if data.trades is not None and len(data.trades):
        for trace in trade_markers(data.trades, legend=True):
            fig.add_trace(trace, 1, 1)
    note = "" if step == data.timeframe else f" — {data.timeframe} bars shown as {step} candles"
    fig.update_layout(
        title={"text": f"{data.title}{note}", "x": 0.01},
        template="plotly_white",
        height=620 + 160 * len(panels),
        xaxis_rangeslider_visible=False,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig, step


def profit_figure(data: PlotInput) -> go.Figure:
    """Cumulative closed-trade P&L of the symbol, and the run's equity curve(s) when known."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=["Cumulative profit of closed trades", "Equity"],
    )
    trades = data.trades if data.trades is not None else pd.DataFrame()
    if len(trades):
        closed = trades[~trades["is_open"].astype(bool)].sort_values("exit_time")
        profit = closed["pnl"].cumsum()
        fig.add_trace(
            go.Scatter(
                x=naive_utc(closed["exit_time"]),
                y=profit,
                mode="lines",
                line={"shape": "hv"},
                name=f"{data.symbol} profit",
            ),
            1,
            1,
        )
    if data.equity is not None:
        for column in [c for c in data.equity.columns if c == "equity" or c.startswith("bench")]:
            curve = decimate(data.equity[column].dropna())
            fig.add_trace(
                go.Scatter(
                    x=naive_utc(curve.index),
                    y=curve,
                    mode="lines",
                    name=column.removeprefix("benchmark_"),
                ),
                2,
                1,
            )
    fig.update_layout(
        title={"text": "Profit", "x": 0.01},
        template="plotly_white",
        height=560,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    return fig


def write_plot(data: PlotInput, out_dir: Path) -> tuple[Path, str]:
    """``plot.html`` (plotly.js beside it) in ``out_dir``; returns its path and the candle step."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    price, step = price_figure(data)
    figures = [price] + ([profit_figure(data)] if data.trades is not None else [])
    divs = "".join(
        pio.to_html(
            f,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{i}",
            config={"displaylogo": False, "responsive": True},
        )
        for i, f in enumerate(figures)
    )
    write_plotly_bundle(out)
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{data.title}</title>"
        f'<script src="{PLOTLY_JS}"></script></head><body style="font-family:sans-serif">'
        f"{divs}</body></html>\n"
    )
    path = out / "plot.html"
    path.write_text(page, encoding="utf-8")
    return path, step
