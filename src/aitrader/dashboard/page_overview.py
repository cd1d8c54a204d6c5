"""Overview: is the bot running, what is it worth, what does it hold, is risk in control —
and the operator's controls (through the API, with the token)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from aitrader.dashboard.charts import equity_figure
from aitrader.dashboard.context import Context, frame, missing, show_table

CONTROLS = {
    "pause": "Pause: no new orders from the next bar",
    "resume": "Resume: the next bar decides again",
    "flatten": "Flatten: close every position now",
    "kill": "Kill: engage the kill switch (close all, block entries)",
}


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def exposure(curve: list[dict[str, Any]]) -> float | None:
    """Net position value as a share of equity at the latest snapshot ((equity − cash) / equity)."""
    if not curve:
        return None
    last = curve[-1]
    equity, cash = float(last["equity"]), float(last["cash"])
    return None if equity == 0 else (equity - cash) / equity


def render(ctx: Context) -> None:
    st.title("Overview")
    status = ctx.api.get("/status")
    if missing(status, "Run status"):
        return
    _state_line(status.data)
    equity = ctx.api.get("/equity", {"limit": 1000})
    if not missing(equity, "Equity"):
        _headline(equity.data)
    left, right = st.columns([3, 2])
    with left:
        if equity.ok and equity.data["curve"]:
            curve = frame(equity.data["curve"], ("time",)).set_index("time")
            st.plotly_chart(equity_figure(curve["equity"]), width="stretch")
        _positions(ctx)
    with right:
        _controls(ctx)
        _risk(ctx)
        _monitoring(ctx)


def _state_line(data: dict[str, Any]) -> None:
    flags = []
    if data["kill_switch"] or data["kill"]:
        flags.append(":red-background[KILL SWITCH ON]")
    if data["circuit_breaker"]:
        flags.append(":red-background[CIRCUIT BREAKER]")
    if data["paused"]:
        flags.append(f":orange-background[PAUSED] {data['pause_reason']}")
    if data.get("reconciling"):
        flags.append(f":orange-background[RECONCILING] {data['reconciling']}")
    if not flags:
        flags.append(":green-background[trading allowed]")
    st.markdown(
        f"**Run:** {data['status']} · **bars:** {data['bars']:,} · **last bar:** "
        f"{data['last_bar'] or '—'} · " + " · ".join(flags)
    )


def _headline(data: dict[str, Any]) -> None:
    first, pnl = data["first_equity"], data["pnl"]
    ret = None if not first or pnl is None else pnl / first
    cells = st.columns(5)
    cells[0].metric("Equity", money(data["last_equity"]))
    cells[1].metric("P&L (net of costs)", money(pnl), percent(ret))
    cells[2].metric("Drawdown from peak", percent(data["drawdown"]))
    cells[3].metric("Net exposure", percent(exposure(data["curve"])))
    cells[4].metric("Peak equity", money(data["peak_equity"]))


def _positions(ctx: Context) -> None:
    st.subheader("Positions")
    answer = ctx.api.get("/positions")
    if missing(answer, "Positions"):
        return
    table = frame(answer.data)
    held = table[table["qty"] != 0] if len(table) else table
    if not len(held):
        st.write("Flat: no open position.")
    else:
        held = held.assign(side=held["qty"].map(lambda q: "long" if q > 0 else "short"))
        show_table(held[["symbol", "side", "qty", "avg_price", "realised_pnl"]])
    if len(table):
        st.caption(f"Realised P&L over all symbols: {money(float(table['realised_pnl'].sum()))}")


def _controls(ctx: Context) -> None:
    st.subheader("Controls")
    reason = st.text_input("Reason (written to the ledger)", value="from the dashboard")
    confirm = st.checkbox("I mean it (needed for flatten and kill)")
    cells = st.columns(len(CONTROLS))
    for cell, (action, help_text) in zip(cells, CONTROLS.items(), strict=True):
        if cell.button(action.capitalize(), help=help_text, key=f"control-{action}"):
            _act(ctx, action, reason, confirm)


def _act(ctx: Context, action: str, reason: str, confirm: bool) -> None:
    if action in ("flatten", "kill") and not confirm:
        st.warning(f"{action}: tick “I mean it” first")
        return
    answer = ctx.api.post(f"/control/{action}", {"reason": reason})
    if answer.ok:
        st.success(answer.data["message"])
    else:
        st.error(f"{action} failed: {answer.missing}")


def _risk(ctx: Context) -> None:
    st.subheader("Risk")
    answer = ctx.api.get("/risk", {"limit": 10})
    if missing(answer, "Risk"):
        return
    data = answer.data
    kill = f"ON — {data['kill_reason']}" if data["kill_switch"] else "off"
    counts = ", ".join(f"{n} {k}" for k, n in sorted(data["counts"].items())) or "none yet"
    st.markdown(
        f"- kill switch: **{kill}**\n- trades today: {data['trades_today']}, losses in a row: "
        f"{data['consecutive_losses']}\n- cooldown until: {data['cooldown_until'] or '—'}\n"
        f"- risk verdicts: {counts}"
    )
    if data["decisions"]:
        table = frame(data["decisions"], ("time",))
        show_table(table[["time", "symbol", "action", "reason"]].iloc[::-1])


def _monitoring(ctx: Context) -> None:
    st.subheader("Feed and errors")
    answer = ctx.api.get("/monitoring")
    if missing(answer, "Monitoring"):
        return
    data = answer.data
    age = data["feed_age_seconds"]
    age_text = "—" if age is None else str(pd.Timedelta(seconds=round(age)))
    st.markdown(
        f"- feed: {data['status']}, last bar {data['last_bar'] or '—'} (age {age_text})\n"
        f"- reconnects: {data['reconnects']}, errors: {data['errors']}"
    )
    for event in data["recent_errors"][-5:]:
        st.error(f"{event['time']} {event['kind']}: {event['message']}")
