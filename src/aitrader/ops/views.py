"""The API's answers, read from the ledger through its read API (never the runtime's objects)."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aitrader.engine.tradebook import BookTrade, TradeBook
from aitrader.engine.types import Fill, Liquidity
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.live.ledger_reads import FillFilter
from aitrader.live.records import LedgerOrder
from aitrader.live.runner import PROGRESS, STATUS
from aitrader.ops import models as m
from aitrader.risk.state import RiskState

ERROR_LEVELS = ("warning", "error", "critical")
ALL_ROWS = 1 << 62


def ledger_fill(row: Mapping[str, Any]) -> Fill:
    """A fill as the engine knows it from a row of the ledger's ``fills`` table."""
    return Fill(
        row["time"],
        row["symbol"],
        float(row["qty"]),
        float(row["price"]),
        float(row["fee"]),
        float(row["slippage"]),
        Liquidity(row["liquidity"]),
        row["client_order_id"],
        row["reason"],
    )


@dataclass(frozen=True)
class TradeFilter:
    """Which round trips: symbol, side, open or closed, entered in a time range; one page."""

    symbol: str | None = None
    side: int | None = None
    is_open: bool | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    limit: int = 100
    offset: int = 0


def positions(ledger: Ledger) -> list[m.PositionOut]:
    return [
        m.PositionOut(symbol=s, qty=p.qty, avg_price=p.avg_price, realised_pnl=p.realised_pnl)
        for s, p in ledger.positions().items()
    ]


def order_out(order: LedgerOrder) -> m.OrderOut:
    return m.OrderOut(
        **{k: getattr(order, k) for k in m.OrderOut.model_fields if k not in ("type", "status")},
        type=order.type.value,
        status=order.status.value,
    )


def fill_page(ledger: Ledger, where: FillFilter) -> m.FillPage:
    frame = ledger.fills(where=where)
    items = [m.FillOut(**row) for row in frame.to_dict("records")]
    total = ledger.fill_count(where)
    return m.FillPage(total=total, offset=where.offset, limit=where.limit or 0, items=items)


class TradeBookCache:
    """The ledger's round trips through the engine's :class:`TradeBook`, kept between calls:
    each call adds only the fills recorded since the last one (fills are append-only), so a
    page of ``/trades`` costs the page, not a replay of every fill."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.book = TradeBook()
        self.last_id = 0
        self.lock = threading.Lock()

    def current(self) -> list[BookTrade]:
        """Closed trades, then the open ones, as of the latest recorded fill."""
        with self.lock:
            rows = self.ledger.rows_after("fills", self.last_id, limit=ALL_ROWS)
            self.book.extend(ledger_fill(row) for row in rows)
            if rows:
                self.last_id = int(rows[-1]["id"])
            return [*self.book.closed, *self.book.open.values()]


def trades(source: Ledger | TradeBookCache, where: TradeFilter) -> m.TradePage:
    """Round trips from every recorded fill, filtered and paged (a :class:`TradeBookCache`
    kept by the caller replays only the fills recorded since its last call)."""
    book = source if isinstance(source, TradeBookCache) else TradeBookCache(source)
    found = [t for t in book.current() if _matches(t, where)]
    page = found[where.offset : where.offset + where.limit]
    return m.TradePage(
        total=len(found), offset=where.offset, limit=where.limit, items=[_trade(t) for t in page]
    )


def _matches(trade: BookTrade, where: TradeFilter) -> bool:
    is_open = trade.exit_time is None
    return (
        (where.symbol is None or trade.symbol == where.symbol)
        and (where.side is None or trade.side == where.side)
        and (where.is_open is None or is_open == where.is_open)
        and (where.since is None or trade.entry_time >= where.since)
        and (where.until is None or trade.entry_time <= where.until)
    )


def _trade(trade: BookTrade) -> m.TradeOut:
    is_open = trade.exit_time is None
    return m.TradeOut(
        symbol=trade.symbol,
        side=trade.side,
        qty=trade.entry_qty,
        entry_time=trade.entry_time,
        entry_price=trade.entry_notional / trade.entry_qty,
        exit_time=trade.exit_time,
        exit_price=None if is_open else trade.exit_notional / trade.exit_qty,
        pnl=None if is_open else trade.pnl,
        fees=trade.fees,
        exit_reason=trade.exit_reason,
        is_open=is_open,
    )


def equity(ledger: Ledger, limit: int) -> m.Equity:
    summary = ledger.equity_summary()
    curve = ledger.latest_equity(limit)
    first, last, peak = summary.first_equity, summary.last_equity, summary.peak_equity
    return m.Equity(
        points=summary.points,
        first_equity=first,
        last_equity=last,
        peak_equity=peak,
        pnl=None if first is None or last is None else last - first,
        drawdown=None if not peak or last is None else 1 - last / peak,
        curve=[
            m.EquityPoint(time=t, equity=e, cash=c)
            for t, e, c in zip(curve.index, curve["equity"], curve["cash"], strict=True)
        ],
    )


def signals(ledger: Ledger, limit: int, symbol: str | None) -> list[m.SignalOut]:
    frame = ledger.latest_signals(limit, symbol)
    return [
        m.SignalOut(time=r["time"], symbol=r["symbol"], target=r["target"], details=r["payload"])
        for r in frame.to_dict("records")
    ]


def risk(ledger: Ledger, limit: int) -> m.Risk:
    state = LedgerRiskStateStore(ledger).load() or RiskState()
    values = state.to_json()
    frame = ledger.latest_risk_decisions(limit).drop(columns="key")
    decisions = [
        m.RiskDecisionOut(**{k: _none_if_nan(v) for k, v in row.items()})
        for row in frame.to_dict("records")
    ]
    fields = {k: values[k] for k in m.Risk.model_fields if k in values}
    return m.Risk(**fields, counts=ledger.risk_action_counts(), decisions=decisions)


def monitoring(ledger: Ledger, now: pd.Timestamp, recent: int = 20) -> m.Monitoring:
    document = ledger.load_state(STATUS) or {}
    last_bar = (ledger.load_state(PROGRESS) or {}).get("last_bar")
    age = None if last_bar is None else (now - pd.Timestamp(last_bar)).total_seconds()
    latest = ledger.events(limit=1000) if recent > 0 else []
    errors = [e for e in latest if e.level in ERROR_LEVELS][-recent:] if recent > 0 else []
    return m.Monitoring(
        status=str(document.get("status", "unknown")),
        since=document.get("since"),
        stalled=list(document.get("stalled", [])),
        last_bar=last_bar,
        feed_age_seconds=age,
        reconnects=ledger.count_events("reconnect"),
        errors=sum(n for (_, level), n in ledger.event_counts().items() if level in ERROR_LEVELS),
        recent_errors=[
            m.EventOut(time=e.time, level=e.level, kind=e.kind, message=e.message) for e in errors
        ],
    )


def _none_if_nan(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value
