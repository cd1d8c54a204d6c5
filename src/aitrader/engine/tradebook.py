"""Round trips (flat → flat) rebuilt from a stream of engine fills, by the kernel's ledger rules.

The compiled kernel keeps its trade ledger inside the simulation; the event-driven path (paper,
live, risk-managed backtests) sees only :class:`Fill` objects. :class:`TradeBook` applies the
same arithmetic to them (entry notional, exit notional, fees, slippage; a trade closes when the
position is exactly flat, which fills never crossing zero guarantee), so both paths produce the
same trade records (``trade_rows``), turned into TRADE_COLUMNS by ``records.trades_frame`` (the
one trade-table builder). It also tells a live policy when a trade closed and for how much.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from aitrader.engine.result import FILL_COLUMNS
from aitrader.engine.types import Fill


@dataclass(frozen=True)
class BookTrade:
    """One round trip: quantities and notionals summed over its fills (unsigned)."""

    symbol: str
    side: int
    entry_time: pd.Timestamp
    entry_qty: float
    entry_notional: float
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    fees: float = 0.0
    slippage: float = 0.0
    position: float = 0.0  # signed quantity still held
    exit_time: pd.Timestamp | None = None
    exit_reason: str = ""
    mark: float = float("nan")  # last close, for a trade still open at the end

    @property
    def pnl(self) -> float:
        """Net of fees and slippage (slippage is inside the fill prices)."""
        return self.side * (self.exit_notional - self.entry_notional) - self.fees

    def marked(self, time: pd.Timestamp, close: float) -> BookTrade:
        """Still open: the rest of the position marked at ``close`` (exit reason ``end``)."""
        return replace(
            self,
            exit_notional=self.exit_notional + abs(self.position) * close,
            exit_time=time,
            exit_reason="end",
            mark=close,
        )


class TradeBook:
    """Feeds on fills in order; :meth:`add` returns the trade a fill closed, if any.

    ``dust`` (base units per symbol) closes a trade when a reducing fill leaves at most that
    much: a spot exchange leaves a remainder below its minimum order amount that cannot be sold
    (the fee on a buy is taken from the asset bought, sells are floored to the amount step).
    """

    def __init__(self, dust: Mapping[str, float] | None = None) -> None:
        self.open: dict[str, BookTrade] = {}
        self.closed: list[BookTrade] = []
        self.dust = dict(dust or {})

    def add(self, fill: Fill) -> BookTrade | None:
        qty, price = fill.qty, fill.price
        trade = self.open.get(fill.symbol)
        if trade is None:
            side = 1 if qty > 0 else -1
            self.open[fill.symbol] = BookTrade(
                fill.symbol,
                side,
                fill.time,
                abs(qty),
                abs(qty) * price,
                fees=fill.fee,
                slippage=fill.slippage,
                position=qty,
            )
            return None
        fees, slip = trade.fees + fill.fee, trade.slippage + fill.slippage
        if (qty > 0) == (trade.position > 0):
            self.open[fill.symbol] = replace(
                trade,
                entry_qty=trade.entry_qty + abs(qty),
                entry_notional=trade.entry_notional + abs(qty) * price,
                position=trade.position + qty,
                fees=fees,
                slippage=slip,
            )
            return None
        position = 0.0 if qty == -trade.position else trade.position + qty
        trade = replace(
            trade,
            exit_qty=trade.exit_qty + abs(qty),
            exit_notional=trade.exit_notional + abs(qty) * price,
            position=position,
            fees=fees,
            slippage=slip,
        )
        if abs(position) > self.dust.get(fill.symbol, 0.0):
            self.open[fill.symbol] = trade
            return None
        del self.open[fill.symbol]
        done = replace(trade, exit_time=fill.time, exit_reason=fill.reason)
        self.closed.append(done)
        return done

    def extend(self, fills: Iterable[Fill]) -> list[BookTrade]:
        """Add fills in order; the trades they closed."""
        return [t for t in map(self.add, fills) if t is not None]

    def snapshot(self, time: pd.Timestamp, closes: Mapping[str, float]) -> list[BookTrade]:
        """Closed trades followed by the open ones marked at ``closes`` (by symbol order)."""
        marked = [self.open[s].marked(time, closes[s]) for s in closes if s in self.open]
        return [*self.closed, *marked]


def trade_rows(
    trades: Sequence[BookTrade], symbols: Sequence[str], index: pd.DatetimeIndex
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Trades as kernel trade records (for ``records.trades_frame``) and the exit-reason names
    their column 10 indexes; those marked at the end (reason ``end``) are the open ones."""
    reasons = tuple(dict.fromkeys(t.exit_reason for t in trades))
    rows = np.empty((len(trades), 12), dtype=np.float64)
    code = {name: k for k, name in enumerate(reasons)}
    column = {s: j for j, s in enumerate(symbols)}
    entry = index.get_indexer(pd.DatetimeIndex([t.entry_time for t in trades]))
    exit_ = index.get_indexer(pd.DatetimeIndex([t.exit_time for t in trades]))
    for k, t in enumerate(trades):
        is_open = t.exit_reason == "end"
        exit_price = t.mark if is_open and t.exit_qty == 0 else t.exit_notional / t.entry_qty
        rows[k] = (
            *(column[t.symbol], t.side, t.entry_qty, entry[k], t.entry_notional / t.entry_qty),
            *(exit_[k], exit_price, t.pnl, t.fees, t.slippage, code[t.exit_reason], is_open),
        )
    return rows, reasons


def fills_table(fills: list[Fill], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Engine fills as FILL_COLUMNS (times placed on the bar index)."""
    bars = index.get_indexer(pd.DatetimeIndex([f.time for f in fills]))
    qty = np.array([f.qty for f in fills], dtype=np.float64)
    frame = pd.DataFrame(
        {
            "time": index[bars],
            "symbol": np.array([f.symbol for f in fills], dtype=object),
            "side": np.sign(qty).astype(np.int64),
            "qty": np.abs(qty),
            "price": np.array([f.price for f in fills], dtype=np.float64),
            "fee": np.array([f.fee for f in fills], dtype=np.float64),
            "slippage": np.array([f.slippage for f in fills], dtype=np.float64),
            "liquidity": np.array([str(f.liquidity) for f in fills], dtype=object),
            "client_order_id": np.array([f.client_order_id for f in fills], dtype=object),
            "reason": np.array([f.reason for f in fills], dtype=object),
        }
    )
    return frame.loc[:, list(FILL_COLUMNS)]
