"""Trades: the run's round trips (flat to flat, P&L net of costs) with filters and CSV export."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from aitrader.dashboard.context import Context, all_items, frame, missing, show_table

SIDES = {"both": None, "long": "buy", "short": "sell"}
STATES = {"all": None, "closed": False, "open": True}
COLUMNS = ["symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
           "pnl", "fees", "exit_reason", "is_open"]  # fmt: skip


def summary(trades: pd.DataFrame) -> dict[str, float]:
    """Count, closed count, win rate, net P&L and fees of a table of trades."""
    closed = trades[~trades["is_open"]] if len(trades) else trades
    wins = int((closed["pnl"] > 0).sum()) if len(closed) else 0
    return {
        "trades": float(len(trades)),
        "closed": float(len(closed)),
        "win_rate": wins / len(closed) if len(closed) else float("nan"),
        "pnl": float(closed["pnl"].sum()) if len(closed) else 0.0,
        "fees": float(trades["fees"].sum()) if len(trades) else 0.0,
    }


def render(ctx: Context) -> None:
    st.title("Trades")
    query = _filters(ctx)
    answer = all_items(ctx.api, "/trades", query)
    if missing(answer, "Trades"):
        return
    if not answer.data:
        st.write("No trade matches these filters.")
        return
    trades = frame(answer.data, ("entry_time", "exit_time"))[COLUMNS]
    trades["side"] = trades["side"].map({1: "long", -1: "short"})
    found = summary(trades)
    cells = st.columns(5)
    cells[0].metric("Trades", f"{int(found['trades']):,}")
    cells[1].metric("Closed", f"{int(found['closed']):,}")
    cells[2].metric("Win rate (closed)", f"{found['win_rate']:.1%}")
    cells[3].metric("Net P&L (closed)", f"{found['pnl']:,.2f}")
    cells[4].metric("Fees paid", f"{found['fees']:,.2f}")
    st.download_button(
        "Download CSV", trades.to_csv(index=False), file_name="trades.csv", mime="text/csv"
    )
    st.caption("Newest first; times UTC; P&L and fees in the account currency, net of costs.")
    show_table(trades.iloc[::-1], height=560)


def _filters(ctx: Context) -> dict[str, Any]:
    cells = st.columns(5)
    symbols = _symbols(ctx)
    symbol = cells[0].selectbox("Symbol", ["all", *symbols])
    side = cells[1].selectbox("Side", list(SIDES))
    state = cells[2].selectbox("State", list(STATES))
    since = cells[3].date_input("Entered from", value=None, key="trades-since")
    until = cells[4].date_input("Entered up to", value=None, key="trades-until")
    query: dict[str, Any] = {}
    if symbol != "all":
        query["symbol"] = symbol
    if SIDES[side] is not None:
        query["side"] = SIDES[side]
    if STATES[state] is not None:
        query["is_open"] = STATES[state]
    if isinstance(since, date):
        query["since"] = datetime.combine(since, time.min).isoformat()
    if isinstance(until, date):
        query["until"] = datetime.combine(until, time.max).isoformat()
    return query


def _symbols(ctx: Context) -> list[str]:
    answer = ctx.api.get("/positions")
    return sorted(p["symbol"] for p in answer.data) if answer.ok else []
