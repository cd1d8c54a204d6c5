"""The bot's own scheduled jobs (``fn(settings, notify) -> str``, see
:mod:`aitrader.ops.scheduler`): data sync, scan with a notice, and the daily report.

The daily report reads the bot's ledger (``bot.ledger``) through its read API and writes one
HTML page per day into ``schedule.reports_dir`` (equity chart, the day's trades, positions, risk
verdicts) with a one-message summary.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.ops import views
from aitrader.ops.texts import daily_text, status_text

Notify = Callable[[str], None]


def data_sync_job(settings: Settings, notify: Notify) -> str:
    """Bring every downloaded series in the store up to date (``aitrader data sync``);
    a notice when a series failed."""
    from aitrader.data.download import sync
    from aitrader.data.store import Store

    results = sync(Store(settings.data.dir), settings.data.download)
    synced = [r for r in results if r.status not in ("skipped", "failed")]
    failed = [r for r in results if r.status == "failed"]
    added = sum(r.rows_added for r in synced)
    summary = (
        f"data sync: {len(synced)} series updated (+{added} bars), "
        f"{len(results) - len(synced) - len(failed)} skipped, {len(failed)} failed"
    )
    if failed:
        names = ", ".join(f"{r.dataset} ({r.message})" for r in failed)
        notify(f"{summary}: {names}")
    return summary


def _plan_line(ref: str, plan: dict[str, Any]) -> str:
    side = {1: "LONG", -1: "SHORT", 0: "flat"}.get(int(plan.get("side", 0)), "flat")
    if side == "flat":
        return f"{ref}: flat ({plan.get('reason') or 'no signal'})"
    numbers = " ".join(
        f"{k} {plan[k]:,.2f}"
        for k in ("entry", "stop", "tp1", "tp2")
        if isinstance(plan.get(k), float) and math.isfinite(plan[k])
    )
    return f"{ref}: {side} {numbers} p_up {plan.get('p_up', math.nan):.2f} ({plan.get('status')})"


def scan_job(settings: Settings, notify: Notify) -> str:
    """The current trade plan of every data set of the run (``run.data``), as ``aitrader
    scan`` shows it (the run's model when ``run.model`` is set, else the SMA baseline),
    sent as one notice."""
    from aitrader.cli.scan import ScanRequest, scan_dataset

    refs = list(settings.run.data)
    if not refs:
        raise ConfigError("the scan job scans run.data: name at least one data set there")
    model = Path(settings.run.model) if settings.run.model else None
    equity = 10_000.0
    request = ScanRequest(
        model, None, "sma-cross", 10, 30, equity, settings.schedule.scan_bars, False
    )
    lines = [
        _plan_line(ref, scan_dataset(ref, settings, settings.signals, request, False)["plan"])
        for ref in refs
    ]
    text = "scan: " + "; ".join(lines)
    notify(text)
    return text


def daily_report_job(settings: Settings, notify: Notify) -> str:
    """The day of the bot's last bar: an HTML page and a summary notice; the summary."""
    path = settings.bot.ledger
    if not path.is_file():
        raise ConfigError(f"bot.ledger {path}: no such ledger file (has the bot run yet?)")
    with Ledger(path, secret_values(settings.secrets)) as ledger:
        curve = ledger.equity_curve()
        if curve.empty:
            text = "daily report: no equity snapshot yet"
            notify(text)
            return text
        day = pd.Timestamp(curve.index[-1]).normalize()
        summary = daily_text(ledger, day)
        page = _report_page(ledger, day, summary)
    out = settings.schedule.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    report = out / f"daily-{day:%Y-%m-%d}.html"
    report.write_text(page, encoding="utf-8")
    text = f"daily report: {summary} ({report})"
    notify(text)
    return text


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
)


def _report_page(ledger: Ledger, day: pd.Timestamp, summary: str) -> str:
    """The daily report as one self-contained page (an inline SVG equity line, no scripts)."""
    until = day + pd.Timedelta(days=1)
    where = views.TradeFilter(is_open=False, limit=1 << 30)
    trades = [t for t in views.trades(ledger, where).items if t.exit_time and day <= t.exit_time]
    rows = "".join(
        f"<tr><td>{t.symbol}</td><td>{'long' if t.side > 0 else 'short'}</td>"
        f"<td>{t.entry_time:%Y-%m-%d %H:%M}</td><td>{t.exit_time:%Y-%m-%d %H:%M}</td>"
        f"<td>{t.pnl:+,.2f}</td><td>{html.escape(t.exit_reason or '')}</td></tr>"
        for t in trades
        if t.exit_time is not None and t.exit_time < until and t.pnl is not None
    )
    curve = ledger.equity_curve()["equity"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(ledger.risk_action_counts().items()))
    status = html.escape(status_text(ledger)).replace("\n", "<br>")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Daily report {day:%Y-%m-%d}"
        f"</title><style>{STYLE}</style></head><body><h1>Daily report {day:%Y-%m-%d} (UTC)</h1>"
        f"<p id='summary'>{html.escape(summary)}</p><p>{status}</p>"
        f"<h2>Equity</h2>{_svg(curve[curve.index < until].iloc[-500:])}"
        f"<h2>Trades closed that day</h2><table><tr><th>symbol</th><th>side</th><th>entry</th>"
        f"<th>exit</th><th>P&amp;L</th><th>exit reason</th></tr>{rows}</table>"
        f"<h2>Risk verdicts (all run)</h2><p>{html.escape(counts or 'none')}</p></body></html>\n"
    )


def _svg(curve: pd.Series, width: int = 800, height: int = 200) -> str:
    """The equity curve as an inline SVG polyline."""
    values = [float(v) for v in curve]
    if len(values) < 2:
        return "<p>not enough equity snapshots for a chart</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - (v - low) / span * height:.1f}" for i, v in enumerate(values)
    )
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='equity'>"
        f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='{points}'/></svg>"
        f"<p>from {values[0]:,.2f} to {values[-1]:,.2f} (low {low:,.2f}, high {high:,.2f})</p>"
    )
