"""Short plain-text summaries of a run for messages (Telegram answers, heartbeats, daily
reports), read from the ledger."""

from __future__ import annotations

import pandas as pd

from aitrader.live.ledger import Ledger
from aitrader.ops import views
from aitrader.ops.controls import status_payload


def status_text(ledger: Ledger) -> str:
    s = status_payload(ledger, events=0)
    held = ", ".join(f"{k} {v:.6g}" for k, v in s["positions"].items()) or "flat"
    equity = "n/a" if s["equity"] is None else f"{s['equity']:,.2f}"
    paused, kill = "yes" if s["paused"] else "no", "on" if s["kill_switch"] else "off"
    return (
        f"status {s['status']}, bars {s['bars']}, last bar {s['last_bar']}\n"
        f"equity {equity}; positions: {held}\n"
        f"paused {paused}, kill switch {kill}"
    )


def balance_text(ledger: Ledger) -> str:
    e = views.equity(ledger, limit=1)
    if e.last_equity is None:
        return "no equity snapshot yet"
    cash = e.curve[-1].cash
    return f"equity {e.last_equity:,.2f}, cash {cash:,.2f}, P&L since start {e.pnl:+,.2f}"


def trades_text(ledger: Ledger, count: int = 5) -> str:
    page = views.trades(ledger, views.TradeFilter(is_open=False, limit=1 << 30))
    lines = [
        f"{t.exit_time:%Y-%m-%d %H:%M} {t.symbol} {'long' if t.side > 0 else 'short'} "
        f"P&L {t.pnl:+,.2f}"
        for t in page.items[-count:]
    ]
    return "\n".join(lines) or "no closed trade yet"


def daily_text(ledger: Ledger, day: pd.Timestamp | None = None) -> str:
    """Equity at the end of the UTC ``day`` (default: the last bar's) and its change over
    the day (from the last snapshot before it, or the first one)."""
    curve = ledger.equity_curve()["equity"]
    if curve.empty:
        return "no equity snapshot yet"
    day = (curve.index[-1] if day is None else day).normalize()
    upto = curve[curve.index < day + pd.Timedelta(days=1)]
    before = curve[curve.index < day]
    if upto.empty:
        return f"day {day:%Y-%m-%d}: no equity snapshot"
    start = float(before.iloc[-1]) if len(before) else float(curve.iloc[0])
    end = float(upto.iloc[-1])
    return f"day {day:%Y-%m-%d}: equity {end:,.2f}, P&L {end - start:+,.2f}"
