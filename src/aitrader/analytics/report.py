"""HTML report of a backtest plus CSV/JSON; plotly.js sits beside it in the same folder, so the
page stays small (< 2 MB for the demo) and the folder opens offline.

Charts of long runs are decimated to at most ``MAX_POINTS`` points per trace: each bucket of
bars keeps its first, last, lowest and highest value, so spikes and drawdown troughs survive.
The CSV files always hold every bar and every trade.
"""

from __future__ import annotations

import html
import itertools
import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from aitrader.analytics.metrics import (
    benchmark_returns,
    compute_metrics,
    drawdown_series,
    monthly_returns,
    rolling_sharpe,
    rolling_window,
)
from aitrader.analytics.units import format_metric
from aitrader.data.timeframes import bars_per_year
from aitrader.engine.result import BacktestResult

MAX_POINTS = 5000
PLOTLY_JS = "plotly.min.js"  # written beside each report, loaded by a relative <script src>
TRADE_TABLE_ROWS = 500
HISTOGRAM_BINS = 100
CHART_HEIGHT = 420
TIME_FORMAT = "%Y-%m-%d %H:%M"
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
ZERO_COST_BANNER = "ZERO-COST RUN: fees and slippage were switched off; results are optimistic."


def decimate(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """At most ``max_points`` points of ``series``: first, last, min and max of equal buckets."""
    n = len(series)
    if n <= max_points:
        return series
    values = series.to_numpy(dtype=np.float64)
    edges = np.linspace(0, n, max_points // 4 + 1).astype(np.int64)
    keep: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        seg = values[lo:hi]
        keep += [lo, hi - 1]
        keep.append(lo + int(np.argmin(np.where(np.isnan(seg), np.inf, seg))))
        keep.append(lo + int(np.argmax(np.where(np.isnan(seg), -np.inf, seg))))
    return series.iloc[np.unique(keep)]


def naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    """UTC wall-clock times without tz (plotly.js has no time-zone support)."""
    times = pd.DatetimeIndex(index)
    return times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times


def _line(series: pd.Series, name: str, colour: str, **kwargs: Any) -> go.Scatter:
    """A decimated line trace over naive UTC times."""
    small = decimate(series)
    return go.Scatter(
        x=naive_utc(small.index),
        y=small.to_numpy(dtype=np.float64),
        name=name,
        mode="lines",
        line={"color": colour, "width": 1.4},
        **kwargs,
    )


def _layout(fig: go.Figure, title: str, yaxis: dict[str, Any] | None = None) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=CHART_HEIGHT,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        yaxis=yaxis or {},
    )
    return fig


def equity_figure(result: BacktestResult, log_scale: bool = False) -> go.Figure:
    """Strategy equity next to each benchmark's equity (same initial cash); strategy on top."""
    fig = go.Figure()
    for i, (name, curve) in enumerate(result.benchmarks.items(), start=1):
        fig.add_trace(_line(curve, name, COLOURS[i % len(COLOURS)], opacity=0.8, legendrank=2))
    fig.add_trace(_line(result.equity, result.name, COLOURS[0], legendrank=1))
    axis = {"type": "log" if log_scale else "linear", "title": "equity"}
    return _layout(fig, "Equity vs benchmarks" + (" (log scale)" if log_scale else ""), axis)


def drawdown_figure(result: BacktestResult) -> go.Figure:
    """Drawdown from the running peak, strategy filled, benchmarks as lines."""
    fig = go.Figure([_line(100 * drawdown_series(result.returns), result.name, COLOURS[0])])
    fig.data[0].update(fill="tozeroy")
    for i, (name, curve) in enumerate(result.benchmarks.items(), start=1):
        dd = 100 * drawdown_series(benchmark_returns(curve, result.initial_cash))
        fig.add_trace(_line(dd, name, COLOURS[i % len(COLOURS)], opacity=0.7))
    return _layout(fig, "Drawdown", {"title": "% below peak", "ticksuffix": "%"})


def monthly_figure(returns: pd.Series) -> go.Figure:
    """Heatmap of compounded monthly returns (years × months), red losses, green gains."""
    table = 100 * monthly_returns(returns)
    labels = [pd.Timestamp(2000, m, 1).strftime("%b") for m in table.columns]
    z = table.to_numpy(dtype=np.float64)
    text = [["" if np.isnan(v) else f"{v:.1f}" for v in row] for row in z]
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    heat = go.Heatmap(
        z=z,
        x=labels,
        y=[str(y) for y in table.index],
        text=text,
        texttemplate="%{text}",
        colorscale="RdYlGn",
        zmid=0,
        zmin=-limit,
        zmax=limit,
        colorbar={"title": "%"},
        hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
    )
    fig = _layout(go.Figure(heat), "Monthly returns (%)", {"autorange": "reversed"})
    fig.update_layout(height=max(CHART_HEIGHT, 28 * len(table) + 120))
    return fig


def rolling_sharpe_figure(returns: pd.Series, periods: float, name: str) -> go.Figure:
    """Trailing Sharpe over about a quarter of a year of bars."""
    window = rolling_window(periods)
    series = rolling_sharpe(returns, window, periods)
    fig = go.Figure([_line(series, name, COLOURS[0])])
    fig.add_hline(y=0, line={"color": "#888", "width": 1})
    return _layout(fig, f"Rolling Sharpe ({window} bars, annualised)", {"title": "Sharpe"})


def distribution_figure(returns: pd.Series) -> go.Figure:
    """Histogram of bar returns, binned here so the page does not carry every bar; tails beyond
    the 0.1 / 99.9 percentiles are gathered into the end bins."""
    values = 100 * returns.replace([np.inf, -np.inf], np.nan).dropna().to_numpy(np.float64)
    if len(values):
        values = np.clip(values, *np.percentile(values, [0.1, 99.9]))
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    centres = (edges[:-1] + edges[1:]) / 2
    bar = go.Bar(x=centres, y=counts, marker={"color": COLOURS[0]}, name="bars")
    fig = _layout(go.Figure(bar), "Distribution of bar returns", {"title": "bars"})
    fig.update_layout(bargap=0.02, xaxis={"title": "bar return", "ticksuffix": "%"})
    return fig


def exposure_figure(result: BacktestResult) -> go.Figure:
    """Gross exposure (position notional / equity) per bar, and its trailing average."""
    window = rolling_window(bars_per_year(result.timeframe, result.calendar))
    average = result.exposure.abs().rolling(window, min_periods=1).mean()
    exposure, label = result.exposure, "exposure"
    if len(exposure) > MAX_POINTS:  # per-bar 0/1 switching over a long run is a solid band
        size = -(-len(exposure) // (MAX_POINTS // 2))
        exposure = exposure.groupby(np.arange(len(exposure)) // size).mean()
        exposure.index = result.exposure.index[::size][: len(exposure)]
        label = f"exposure, mean of each {size} bars"
    fig = go.Figure(
        [
            _line(exposure, label, "#98df8a", fill="tozeroy", opacity=0.6),
            _line(average, f"average over {window} bars", "#1b5e20"),
        ]
    )
    return _layout(fig, "Exposure (gross notional / equity)", {"title": "exposure"})


def _markers(trades: pd.DataFrame, when: str, price: str, **style: Any) -> go.Scatter:
    """Scatter of trade entries or exits, evenly thinned to ``MAX_POINTS``."""
    step = max(1, -(-len(trades) // MAX_POINTS))
    rows = trades.iloc[::step]
    return go.Scatter(
        x=naive_utc(pd.DatetimeIndex(pd.to_datetime(rows[when]))),
        y=rows[price].to_numpy(dtype=np.float64),
        mode="markers",
        **style,
    )


def trades_figure(
    prices: pd.DataFrame, trades: pd.DataFrame, closes: pd.DataFrame | None = None
) -> go.Figure:
    """One price panel per symbol, each with its own entry (▲ long / ▼ short) and exit (✕)
    markers; ``closes`` holds every symbol's close (else ``prices`` is the only symbol's)."""
    panels = closes if closes is not None and len(closes.columns) else None
    symbols = list(panels.columns) if panels is not None else [None]
    fig = make_subplots(
        rows=len(symbols),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[str(s) for s in symbols] if panels is not None else None,
    )
    for row, symbol in enumerate(symbols, start=1):
        close = panels[symbol] if panels is not None else prices["close"]
        mine = trades if symbol is None or not len(trades) else trades[trades["symbol"] == symbol]
        legend = row == 1
        fig.add_trace(_line(close, f"{symbol or 'close'}", "#555", showlegend=False), row, 1)
        for trace in trade_markers(mine, legend):
            fig.add_trace(trace, row, 1)
        fig.update_yaxes(title_text="price", row=row, col=1)
    _layout(fig, "Trades on price")
    fig.update_layout(height=max(CHART_HEIGHT, 300 * len(symbols)))
    return fig


def trade_markers(trades: pd.DataFrame, legend: bool) -> list[go.Scatter]:
    """Entry and exit markers of one symbol's trades (legend entries only on the first panel)."""
    traces = []
    for side, symbol, colour, label in (
        (1, "triangle-up", "#2ca02c", "long entry"),
        (-1, "triangle-down", "#d62728", "short entry"),
    ):
        chosen = trades[trades["side"] == side] if len(trades) else trades
        if len(chosen):
            style = {"symbol": symbol, "color": colour, "size": 8, "opacity": 0.8}
            traces.append(
                _markers(
                    chosen,
                    "entry_time",
                    "entry_price",
                    name=label,
                    marker=style,
                    legendgroup=label,
                    showlegend=legend,
                )
            )
    closed = trades[~trades["is_open"].astype(bool)] if len(trades) else trades
    if len(closed):
        style = {"symbol": "x", "color": "#000", "size": 5, "opacity": 0.6}
        traces.append(
            _markers(
                closed,
                "exit_time",
                "exit_price",
                name="exit",
                marker=style,
                legendgroup="exit",
                showlegend=legend,
            )
        )
    return traces


def build_figures(result: BacktestResult, log_scale: bool = False) -> dict[str, go.Figure]:
    """Every chart of the report, keyed by a stable id (trade markers only when prices exist)."""
    periods = bars_per_year(result.timeframe, result.calendar)
    returns = result.returns
    figures = {
        "equity": equity_figure(result, log_scale),
        "drawdown": drawdown_figure(result),
        "monthly": monthly_figure(returns),
        "rolling-sharpe": rolling_sharpe_figure(returns, periods, result.name),
        "distribution": distribution_figure(returns),
        "exposure": exposure_figure(result),
    }
    if result.prices is not None and len(result.prices):
        figures["trades"] = trades_figure(result.prices, result.trades, result.closes)
    return figures


METRIC_ROWS: tuple[tuple[str, str], ...] = (  # key and label; units in analytics.units
    ("final_equity", "Final equity"),
    ("total_return", "Total return"),
    ("cagr", "CAGR"),
    ("volatility", "Volatility (ann.)"),
    ("sharpe", "Sharpe (rf = 0)"),
    ("sortino", "Sortino"),
    ("calmar", "Calmar"),
    ("max_drawdown", "Max drawdown"),
    ("max_drawdown_duration_bars", "Longest drawdown (bars)"),
    ("max_drawdown_duration_days", "Longest drawdown (days)"),
    ("trades", "Closed trades"),
    ("open_trades", "Open at end"),
    ("win_rate", "Win rate"),
    ("profit_factor", "Profit factor"),
    ("payoff_ratio", "Payoff ratio"),
    ("expectancy", "Expectancy per trade"),
    ("expectancy_pct", "Expectancy per trade (%)"),
    ("avg_holding_hours", "Average holding (hours)"),
    ("turnover_annual", "Turnover (× equity / year)"),
    ("avg_exposure", "Average exposure"),
    ("time_in_market", "Time in market"),
    ("fees_paid", "Fees paid"),
    ("slippage_paid", "Slippage paid"),
    ("costs_pct_of_initial", "Costs (% of initial cash)"),
)


def metrics_table(metrics: dict[str, Any]) -> str:
    """HTML table: one row per metric, the strategy next to each benchmark."""
    benchmarks: dict[str, dict[str, Any]] = metrics.get("benchmarks", {})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in [metrics["name"], *benchmarks])
    rows = []
    for key, label in METRIC_ROWS:
        cells = [format_metric(key, metrics.get(key))]
        cells += [format_metric(key, b[key]) if key in b else "" for b in benchmarks.values()]
        rows.append(f"<tr><th>{label}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="metrics"><tr><th>metric</th>{head}</tr>{"".join(rows)}</table>'


def trades_table(trades: pd.DataFrame, limit: int = TRADE_TABLE_ROWS) -> str:
    """HTML table of trades; beyond ``limit`` rows only the first and last halves are shown."""
    if trades.empty:
        return "<p>No trades.</p>"
    shown = (
        trades
        if len(trades) <= limit
        else pd.concat([trades.head(limit // 2), trades.tail(limit // 2)])
    )
    note = (
        f"<p>{len(trades):,} trades; showing the first and last {limit // 2} "
        "(every trade is in trades.csv).</p>"
        if len(trades) > limit
        else ""
    )
    for column in ("entry_time", "exit_time"):
        if column in shown:
            shown = shown.assign(**{column: pd.to_datetime(shown[column]).dt.strftime(TIME_FORMAT)})
    units = {c: partial(format_metric, c) for c in ("pnl", "return", "fees", "slippage")}
    body = shown.to_html(
        classes="trades",
        index=False,
        float_format=lambda v: f"{v:,.6g}",
        formatters={c: f for c, f in units.items() if c in shown},
        na_rep="",
        border=0,
    )
    return note + body


STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; }
h1 { margin-bottom: 4px; } .meta { color: #555; margin-top: 0; }
.banner { background: #c62828; color: #fff; font-weight: bold; padding: 12px 16px;
          font-size: 18px; border-radius: 4px; margin: 12px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 24px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
table.metrics th:first-child { text-align: left; }
.chart { margin: 8px 0 16px; }
.trades-wrap { max-height: 600px; overflow: auto; }
"""


def _chart_divs(figures: dict[str, go.Figure]) -> str:
    """Each figure as a div; plotly.js comes from ``PLOTLY_JS`` beside the page."""
    parts = []
    for key, fig in figures.items():
        div = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{key}",
            default_height=f"{fig.layout.height}px",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f'<div class="chart" id="section-{key}">{div}</div>')
    return "\n".join(parts)


def render_html(result: BacktestResult, metrics: dict[str, Any], log_scale: bool = False) -> str:
    """The whole report page as one string (no external resources)."""
    title = html.escape(f"Backtest report: {result.name}")
    span = " → ".join(
        pd.Timestamp(t).strftime(TIME_FORMAT) for t in (metrics["start"], metrics["end"]) if t
    )
    meta = html.escape(
        f"{span} UTC · {metrics['bars']:,} bars of {result.timeframe}"
        f" · {result.calendar} calendar ({metrics['bars_per_year']:g} bars/year)"
        f" · initial cash {result.initial_cash:,.2f}"
    )
    banner = (
        f'<div class="banner" id="zero-cost">{ZERO_COST_BANNER}</div>' if result.zero_cost else ""
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f'<script src="{PLOTLY_JS}"></script>'
        f"<style>{STYLE}</style></head><body>\n<h1>{title}</h1><p class='meta'>{meta}</p>"
        f"{banner}\n<h2>Metrics</h2>{metrics_table(metrics)}\n<h2>Charts</h2>"
        f"{_chart_divs(build_figures(result, log_scale))}\n<h2>Trades</h2>"
        f"<div class='trades-wrap'>{trades_table(result.trades)}</div>\n</body></html>\n"
    )


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    """Per-bar account state for ``equity.csv``: equity, cash, exposure, return, drawdown,
    and one column per benchmark equity curve."""
    frame = pd.DataFrame(
        {
            "equity": result.equity,
            "cash": result.cash,
            "exposure": result.exposure,
            "return": result.returns,
            "drawdown": drawdown_series(result.returns),
        }
    )
    for name, curve in result.benchmarks.items():
        frame[f"benchmark_{name}"] = curve
    frame.index.name = "timestamp"
    return frame


def write_report(result: BacktestResult, out_dir: Path | str, log_scale: bool = False) -> Path:
    """Write ``report.html``, ``metrics.json``, ``trades.csv`` and ``equity.csv`` into
    ``out_dir`` (created if needed); returns the path of the HTML report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(result)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    result.trades.to_csv(out / "trades.csv", index=False)
    equity_frame(result).to_csv(out / "equity.csv")
    write_plotly_bundle(out)
    path = out / "report.html"
    path.write_text(render_html(result, metrics, log_scale), encoding="utf-8")
    return path


def write_plotly_bundle(out_dir: Path) -> Path:
    """``plotly.min.js`` in ``out_dir``, shared by every page there (written when missing or
    from another plotly version), so each page stays small and still opens offline."""
    from plotly.offline import get_plotlyjs

    path = out_dir / PLOTLY_JS
    bundle = get_plotlyjs()
    if not path.is_file() or path.stat().st_size != len(bundle.encode()):
        path.write_text(bundle, encoding="utf-8")
    return path
