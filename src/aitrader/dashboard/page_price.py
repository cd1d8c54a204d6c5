"""Price: the candles of the traded market with the run's fills, the strategy's target position
and the open trade's plan (entry, stop, take-profit levels)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from aitrader.dashboard.charts import price_figure
from aitrader.dashboard.context import Context, all_items, frame, missing
from aitrader.dashboard.stored import dataset_names, load

PLAN_KEYS = {  # absolute price levels a strategy's trade plan may carry in its signal details
    "entry": ("entry", "entry_price"),
    "stop": ("stop_price", "sl", "stop"),
    "tp1": ("tp1", "take_profit_1"),
    "tp2": ("tp2", "take_profit_2"),
}


def plan_levels(details: Mapping[str, Any], qty: float, avg_price: float) -> dict[str, float]:
    """The open trade's levels: absolute plan prices from the signal's details where present,
    else its stop-loss / take-profit fractions around the average entry price."""
    levels: dict[str, float] = {}
    for label, keys in PLAN_KEYS.items():
        value = next((details[k] for k in keys if isinstance(details.get(k), int | float)), None)
        if value is not None:
            levels[label] = float(value)
    if qty == 0:
        return levels
    side = 1.0 if qty > 0 else -1.0
    levels.setdefault("entry", avg_price)
    stop, take = details.get("stop_loss"), details.get("take_profit")
    if isinstance(stop, int | float) and "stop" not in levels:
        levels["stop"] = avg_price * (1 - side * float(stop))
    if isinstance(take, int | float) and "tp1" not in levels:
        levels["take profit"] = avg_price * (1 + side * float(take))
    return levels


def render(ctx: Context) -> None:
    st.title("Price, signals and fills")
    positions = ctx.api.get("/positions")
    symbols = [p["symbol"] for p in positions.data] if positions.ok else []
    if ctx.settings is None:
        st.error(f"The configuration cannot be read: {ctx.settings_error}")
        return
    names = dataset_names(ctx.settings)
    default = _default_dataset(names, symbols)
    top = st.columns([2, 1])
    name = top[0].selectbox("Candles from", names, index=names.index(default))
    bars = top[1].slider("Bars shown", 100, 3000, 500, step=100)
    try:
        dataset = load(name, str(ctx.settings.data.dir))
    except Exception as exc:  # a data set that cannot be read: say which and why
        st.error(f"{name}: cannot load the candles ({exc})")
        return
    candles, symbol = dataset.candles, dataset.symbol
    status = ctx.api.get("/status")
    end = pd.Timestamp(status.data["last_bar"]) if status.ok and status.data["last_bar"] else None
    shown = candles.loc[:end].iloc[-bars:] if end is not None else candles.iloc[-bars:]
    if not len(shown):
        st.warning(f"{name} has no candles up to the run's last bar {end}")
        return
    fills, targets, levels = _run_overlays(ctx, symbol, shown.index[0], positions.data or [])
    title = f"{symbol} {name}: {shown.index[0]:%Y-%m-%d %H:%M} → {shown.index[-1]:%Y-%m-%d %H:%M}"
    st.plotly_chart(price_figure(shown, fills, targets, levels, title), width="stretch")
    _legend(fills, targets, levels)


def _default_dataset(names: list[str], symbols: list[str]) -> str:
    from aitrader.dashboard.stored import symbol_of

    traded = [n for n in names if symbol_of(n) in symbols]
    return traded[0] if traded else names[0]


def _run_overlays(
    ctx: Context, symbol: str, since: pd.Timestamp, positions: list[dict[str, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The run's fills and targets of ``symbol`` from ``since`` on, and its open trade's plan."""
    answer = all_items(ctx.api, "/fills", {"symbol": symbol, "since": since.isoformat()})
    fills = pd.DataFrame(columns=["time", "side", "price"])
    if not missing(answer, "Fills") and answer.data:
        fills = frame(answer.data, ("time",))
    signals = ctx.api.get("/signals", {"symbol": symbol, "limit": 1000})
    targets = pd.DataFrame(columns=["time", "target"])
    levels: dict[str, float] = {}
    if not missing(signals, "Signals") and signals.data:
        targets = frame(signals.data, ("time",))
        targets = targets[targets["time"] >= since]
        held = next((p for p in positions if p["symbol"] == symbol), None)
        if held is not None:
            latest = signals.data[-1]["details"] or {}
            levels = plan_levels(latest, float(held["qty"]), float(held["avg_price"]))
    return fills, targets, levels


def _legend(fills: pd.DataFrame, targets: pd.DataFrame, levels: dict[str, float]) -> None:
    buys = int((fills["side"] == 1).sum()) if len(fills) else 0
    sells = len(fills) - buys
    plan = ", ".join(f"{k} {v:,.2f}" for k, v in levels.items()) or "no open trade"
    st.caption(
        f"Shown: {buys} buy fills (green ▲), {sells} sell fills (red ▼), "
        f"{len(targets)} target changes (lower panel, fraction of equity). Open trade plan: {plan}."
    )
