"""The dashboard's plotly figures, built from plain tables (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GREEN, RED, BLUE, GREY = "#16a34a", "#dc2626", "#2563eb", "#6b7280"
PURPLE = "#7c3aed"
LEVEL_COLOURS = {"entry": PURPLE, "stop": RED, "tp1": GREEN, "tp2": GREEN, "take profit": GREEN}


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1.0, "xanchor": "right"},
        hovermode="x unified",
    )
    return fig


def equity_figure(
    equity: pd.Series, lines: Mapping[str, pd.Series] | None = None, name: str = "equity"
) -> go.Figure:
    """Equity over time; ``lines``: more series to compare (benchmarks)."""
    fig = go.Figure()
    fig.add_scatter(x=equity.index, y=equity, name=name, line={"color": BLUE, "width": 2.5})
    for name, series in (lines or {}).items():
        fig.add_scatter(x=series.index, y=series, name=name, line={"dash": "dash"})
    fig.update_yaxes(title="account value")
    return _layout(fig, "Equity")


def price_figure(
    candles: pd.DataFrame,
    fills: pd.DataFrame,
    targets: pd.DataFrame,
    levels: Mapping[str, float],
    title: str,
) -> go.Figure:
    """Candles with buy/sell fills and the current trade plan's levels; below them the target
    position the strategy asked for (fraction of equity)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25])
    fig.add_candlestick(
        increasing={"line": {"color": "#86c5a0"}, "fillcolor": "#86c5a0"},
        decreasing={"line": {"color": "#e8a0a0"}, "fillcolor": "#e8a0a0"},
        x=candles.index,
        open=candles["open"],
        high=candles["high"],
        low=candles["low"],
        close=candles["close"],
        name="price",
        row=1,
        col=1,
    )
    _add_fills(fig, fills)
    _add_levels(fig, levels)
    if len(targets):
        fig.add_scatter(
            x=targets["time"],
            y=targets["target"],
            name="target position",
            line={"shape": "hv", "color": BLUE},
            row=2,
            col=1,
        )
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_yaxes(title="price", row=1, col=1)
    fig.update_yaxes(title="target (× equity)", row=2, col=1)
    return _layout(fig, title, height=640)


def _add_fills(fig: go.Figure, fills: pd.DataFrame) -> None:
    """Buy and sell fills as markers on the price panel."""
    for side, name, symbol, colour in (
        (1, "buy fill", "triangle-up", GREEN),
        (-1, "sell fill", "triangle-down", RED),
    ):
        chosen = fills[fills["side"] == side] if len(fills) else fills
        fig.add_scatter(
            x=chosen.get("time", []),
            y=chosen.get("price", []),
            mode="markers",
            name=name,
            marker={
                "symbol": symbol,
                "size": 13,
                "color": colour,
                "line": {"width": 1.5, "color": "black"},
            },
            row=1,
            col=1,
        )


def _add_levels(fig: go.Figure, levels: Mapping[str, float]) -> None:
    """The trade plan's levels as dashed lines across the price panel."""
    for name, price in levels.items():
        colour = LEVEL_COLOURS.get(name.split(" ")[0] if name != "take profit" else name, GREY)
        fig.add_hline(
            y=price,
            line={"color": colour, "dash": "dash"},
            row=1,
            col=1,
            annotation_text=f"{name} {price:,.2f}",
            annotation_position="top left",
        )


def calibration_figure(table: pd.DataFrame) -> go.Figure:
    """Observed win frequency against the predicted p(win), per bin; the diagonal is perfect."""
    values = [*table["p_mean"], *table["win_rate"]]
    low, high = max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02)
    fig = go.Figure()
    fig.add_scatter(
        x=[low, high],
        y=[low, high],
        name="perfectly calibrated",
        line={"color": GREY, "dash": "dot"},
    )
    fig.add_scatter(
        x=table["p_mean"],
        y=table["win_rate"],
        name="model",
        mode="lines+markers",
        text=[f"{n} rows" for n in table["rows"]],
        line={"color": BLUE},
    )
    fig.update_xaxes(title="predicted p(win)", range=[low, high], tickformat=".0%")
    fig.update_yaxes(title="observed win rate", range=[low, high], tickformat=".0%")
    return _layout(fig, "Calibration curve", height=380)


def histogram_figure(p_win: pd.Series, won: pd.Series) -> go.Figure:
    """p(win) of rows that were wins and of rows that were not."""
    fig = go.Figure()
    fig.add_histogram(x=p_win[won], name="won", marker={"color": GREEN}, opacity=0.6, nbinsx=40)
    fig.add_histogram(
        x=p_win[~won], name="did not win", marker={"color": RED}, opacity=0.6, nbinsx=40
    )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="predicted p(win)")
    fig.update_yaxes(title="rows")
    return _layout(fig, "p(win) histogram", height=380)


def coverage_figure(table: pd.DataFrame) -> go.Figure:
    """Per threshold: the share of rows at or above it (coverage) and their win rate."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(
        x=table["threshold"], y=table["win_rate"], name="win rate", line={"color": GREEN}
    )
    fig.add_scatter(
        x=table["threshold"],
        y=table["coverage"],
        name="coverage",
        line={"color": BLUE, "dash": "dash"},
        secondary_y=True,
    )
    fig.update_xaxes(title="trade when p(win) ≥ threshold")
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(title="win rate", tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title="coverage (share of bars)", tickformat=".0%", secondary_y=True)
    return _layout(fig, "Coverage vs win rate by threshold", height=380)


def importance_figure(importance: pd.Series, top: int = 20) -> go.Figure:
    chosen = importance.sort_values(ascending=False).head(top).iloc[::-1]
    fig = go.Figure(
        go.Bar(x=chosen.to_numpy(), y=chosen.index, orientation="h", marker={"color": BLUE})
    )
    fig.update_xaxes(title="importance (share of the total)")
    return _layout(
        fig, f"Feature importance (top {len(chosen)})", height=max(300, 22 * len(chosen))
    )


def rows_figure(counts: pd.Series, title: str, share: bool) -> go.Figure:
    """Bars stored per month (``share``: as a share of the month's calendar bars; a dip is a
    gap in the data)."""
    fig = go.Figure(
        go.Bar(x=counts.index, y=counts.to_numpy(), name="bars", marker={"color": BLUE})
    )
    if share:
        low = min(0.9, float(counts.min()) - 0.02)
        fig.update_yaxes(title="share of the month's bars", tickformat=".0%", range=[low, 1.005])
    else:
        fig.update_yaxes(title="bars stored")
    return _layout(fig, title, height=320)
