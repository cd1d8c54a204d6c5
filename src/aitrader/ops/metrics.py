"""Prometheus metrics of a run, read from its ledger at each scrape (prometheus-client).

A custom collector on its own registry: nothing is cached between scrapes and several APIs in
one process do not clash. The decision-latency histogram counts the latency the runner records
with each bar's decision (the bar's decision path: broker events, strategy, risk checks, orders
written to the ledger).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from aitrader.live.ledger import DRIFT, Ledger
from aitrader.ops.controls import status_payload
from aitrader.ops.views import monitoring

PREFIX = "aitrader_"
DRIFT_LEVELS = {"ok": 0.0, "warn": 1.0, "alert": 2.0}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the decision-latency histogram's buckets."""


def _gauge(name: str, text: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, text, value=float("nan") if value is None else value)


class LedgerCollector(Collector):
    """Equity, P&L, positions, orders, fills, risk verdicts, feed lag and the safety switches
    of the run whose ledger this is."""

    def __init__(self, ledger: Ledger, clock: Callable[[], pd.Timestamp]) -> None:
        self.ledger, self.clock = ledger, clock

    def collect(self) -> Iterator[Metric]:
        ledger = self.ledger
        status = status_payload(ledger, events=0)
        summary = ledger.equity_summary()
        first, last = summary.first_equity, summary.last_equity
        yield _gauge("equity", "Last equity snapshot (quote currency).", last)
        yield _gauge("cash", "Cash at the last equity snapshot.", summary.last_cash)
        pnl = None if first is None or last is None else last - first
        yield _gauge("pnl", "Equity change since the first snapshot.", pnl)
        peak = summary.peak_equity
        drawdown = None if not peak or last is None else 1 - last / peak
        yield _gauge("drawdown", "Drawdown from the peak equity snapshot (fraction).", drawdown)
        yield from self._positions()
        open_orders = len(status["open_orders"])
        yield _gauge("open_orders", "Orders not yet filled, cancelled or rejected.", open_orders)
        counts = ledger.row_counts()
        for name in ("orders", "fills", "signals"):
            yield CounterMetricFamily(PREFIX + name, f"{name.title()} recorded.", counts[name])
        yield from self._risk()
        yield from self._health(status)
        yield self._latency()
        yield from self._drift()

    def _drift(self) -> Iterator[Metric]:
        drift = self.ledger.load_state(DRIFT) or {}
        level = DRIFT_LEVELS.get(str(drift.get("level", "unknown")), -1.0)
        yield _gauge("drift_level", "Latest drift check: 0 ok, 1 warn, 2 alert, -1 none.", level)
        multiplier = float(drift.get("size_multiplier", 1.0))
        yield _gauge("size_multiplier", "Entry-size multiplier set by the drift check.", multiplier)

    def _latency(self) -> HistogramMetricFamily:
        counts, total_ms = self.ledger.latency_histogram([b * 1000.0 for b in LATENCY_BUCKETS])
        buckets = [(f"{b:g}", float(n)) for b, n in zip(LATENCY_BUCKETS, counts, strict=False)]
        return HistogramMetricFamily(
            PREFIX + "decision_latency_seconds",
            "Time of each bar's decision path (broker events, strategy, risk, orders).",
            buckets=[*buckets, ("+Inf", float(counts[-1]))],
            sum_value=total_ms / 1000.0,
        )

    def _positions(self) -> Iterator[Metric]:
        qty = GaugeMetricFamily(
            PREFIX + "position_qty", "Net position (base units).", labels=["symbol"]
        )
        pnl = GaugeMetricFamily(
            PREFIX + "realised_pnl", "Realised P&L by symbol.", labels=["symbol"]
        )
        for symbol, position in self.ledger.positions().items():
            qty.add_metric([symbol], position.qty)
            pnl.add_metric([symbol], position.realised_pnl)
        yield qty
        yield pnl

    def _risk(self) -> Iterator[Metric]:
        counts = self.ledger.risk_action_counts()
        verdicts = CounterMetricFamily(
            PREFIX + "risk_decisions", "Risk manager verdicts by action.", labels=["action"]
        )
        for action in ("accept", "resize", "reject"):
            verdicts.add_metric([action], counts.get(action, 0))
        yield verdicts
        yield CounterMetricFamily(
            PREFIX + "risk_rejects",
            "Order intents the risk manager rejected.",
            counts.get("reject", 0),
        )

    def _health(self, status: dict[str, Any]) -> Iterator[Metric]:
        watch = monitoring(self.ledger, self.clock(), recent=0)
        yield _gauge("bars", "Bars processed.", float(status["bars"]))
        age = watch.feed_age_seconds
        yield _gauge("feed_age_seconds", "Wall seconds since the last processed bar's open.", age)
        yield _gauge("feeds_stalled", "Feeds the watchdog finds stalled.", len(watch.stalled))
        yield _gauge("degraded", "1 while a feed is stalled.", float(watch.status == "degraded"))
        yield _gauge("reconnects", "Events that mention a reconnect.", watch.reconnects)
        yield _gauge("errors", "Events at level warning or error.", watch.errors)
        for name, text in (
            ("paused", "1 while trading is paused."),
            ("kill", "1 once the kill flag is set."),
            ("kill_switch", "1 while the risk manager's kill switch is engaged."),
            ("circuit_breaker", "1 while the circuit breaker holds trading paused."),
        ):
            yield _gauge(name, text, float(bool(status[name])))


def registry(ledger: Ledger, clock: Callable[[], pd.Timestamp]) -> CollectorRegistry:
    """A registry holding only this ledger's collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(LedgerCollector(ledger, clock))
    return reg
