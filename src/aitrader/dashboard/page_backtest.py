"""Backtest explorer: pick a strategy, data, dates and costs, run it through the same
risk-managed backtest as ``aitrader backtest`` and read the report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from aitrader.analytics.units import format_metric
from aitrader.config import Settings
from aitrader.dashboard.charts import equity_figure
from aitrader.dashboard.context import Context, show_table
from aitrader.dashboard.stored import dataset_names

ROWS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "volatility")
TRADE_ROWS = ("trades", "win_rate", "fees_paid", "slippage_paid")


@dataclass(frozen=True)
class Request:
    """One backtest as the form asks for it."""

    strategy: str
    params: tuple[str, ...]
    dataset: str
    start: date | None
    end: date | None
    fee: float
    slippage_bps: float
    model: str = ""


def run(settings: Settings, request: Request) -> tuple[Any, str | None]:
    """The ManagedResult of ``request`` (the ``aitrader backtest`` path) and an in-sample
    warning (None: none)."""
    from aitrader.cli.backtest import with_costs
    from aitrader.cli.strategy import StrategyChoice, run_inputs
    from aitrader.strategy.run import backtest_strategy

    cfg = with_costs(settings, request.fee, request.slippage_bps)
    model = Path(request.model) if request.model else None
    chosen = StrategyChoice(request.strategy, request.params, model)
    window = tuple(None if d is None else d.isoformat() for d in (request.start, request.end))
    data, spec = run_inputs(cfg, [request.dataset], chosen, (window[0], window[1]))
    strategy = chosen.build()
    spec = replace(spec, options=replace(spec.options, name=strategy.name))
    managed = backtest_strategy(strategy, data, cfg, spec)
    equity = managed.result.equity
    return managed, chosen.in_sample(equity.index[0], equity.index[-1])


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The strategy next to its benchmarks, formatted (the CLI's summary rows)."""
    columns: dict[str, dict[str, Any]] = {metrics["name"]: metrics, **metrics["benchmarks"]}
    table = {
        name: {key: format_metric(key, values.get(key)) for key in (*ROWS, *TRADE_ROWS)}
        for name, values in columns.items()
    }
    return pd.DataFrame(table).fillna("")


def render(ctx: Context) -> None:
    st.title("Backtest explorer")
    if ctx.settings is None:
        st.error(f"The configuration cannot be read: {ctx.settings_error}")
        return
    request = _form(ctx.settings, str(ctx.config.bundle or ""))
    if request is not None:
        try:
            st.session_state["backtest-result"] = (request, *run(ctx.settings, request))
        except Exception as exc:  # a bad choice (parameter, dates, data): say what
            st.error(f"The backtest did not run: {exc}")
            return
    if "backtest-result" not in st.session_state:
        st.info("Choose a strategy, data, dates and costs, then press Run backtest.")
        return
    _report(*st.session_state["backtest-result"])


def _form(settings: Settings, bundle: str) -> Request | None:
    from aitrader.strategy.registry import strategies

    names = dataset_names(settings)
    with st.form("backtest"):
        top = st.columns(3)
        choices = list(strategies())
        strategy = top[0].selectbox("Strategy", choices, index=choices.index("sma-cross"))
        dataset = top[1].selectbox("Data", names, index=names.index("sample:BTC-USD-1h"))
        params = top[2].text_input("Parameters (KEY=VALUE, comma-separated)", value="")
        low = st.columns(5)
        start = low[0].date_input("From", value=date(2022, 1, 1))
        end = low[1].date_input("To", value=date(2022, 12, 31))
        fee = low[2].number_input(
            "Fee (fraction)", 0.0, 0.05, settings.costs.taker_fee, format="%.4f"
        )
        slip = low[3].number_input("Slippage (bps)", 0.0, 500.0, settings.costs.slippage_bps)
        model = low[4].text_input("Model bundle (strategy model)", value=bundle)
        if not st.form_submit_button("Run backtest", type="primary"):
            return None
    pairs = tuple(p.strip() for p in params.split(",") if p.strip())
    dates = [d if isinstance(d, date) else None for d in (start, end)]
    used = model if strategy == "model" else ""
    return Request(strategy, pairs, dataset, dates[0], dates[1], fee, slip, used)


def _report(request: Request, managed: Any, warning: str | None) -> None:
    result = managed.result
    metrics = managed.metrics
    st.subheader(f"{metrics['name']} on {request.dataset} ({metrics['timeframe']})")
    st.caption(
        f"{result.equity.index[0]:%Y-%m-%d} → {result.equity.index[-1]:%Y-%m-%d}, fee "
        f"{request.fee:.4%}, slippage {request.slippage_bps:g} bps, parameters: "
        f"{', '.join(request.params) or 'defaults'}"
    )
    if warning:
        st.warning(warning)
    cells = st.columns(4)
    for cell, key in zip(cells, ("total_return", "sharpe", "max_drawdown", "trades"), strict=True):
        cell.metric(key.replace("_", " "), format_metric(key, metrics[key]))
    st.plotly_chart(
        equity_figure(result.equity, result.benchmarks, metrics["name"]), width="stretch"
    )
    st.table(metrics_table(metrics))
    actions = managed.decisions["action"].value_counts() if len(managed.decisions) else None
    if actions is not None:
        st.caption("Risk manager: " + ", ".join(f"{n} {a}" for a, n in actions.items()))
    show_table(result.trades.iloc[::-1], height=320)
