"""What a backtest (or a paper/live session replayed) produces; analytics and reports read this.

The engine fills it; ``aitrader.analytics`` computes metrics and renders reports from it without
knowing how it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

TRADE_COLUMNS: tuple[str, ...] = (
    "symbol",  # str
    "side",  # +1 long, -1 short
    "qty",  # base units (absolute)
    "entry_time",  # tz-aware UTC timestamp of the entry fill
    "entry_price",  # average entry fill price (slippage included)
    "exit_time",  # timestamp of the exit fill; NaT while open at the end
    "exit_price",  # average exit fill price (slippage included); last close while open
    "pnl",  # net of fees and slippage, quote currency
    "return",  # pnl / entry notional
    "fees",  # fees paid on entry + exit
    "slippage",  # slippage cost on entry + exit, quote currency
    "bars_held",  # bars between entry and exit fills
    "exit_reason",  # "signal", "stop_loss", "take_profit", "liquidation", "end", ...
    "is_open",  # True for a position still open when the data ended (marked to market)
)

FILL_COLUMNS: tuple[str, ...] = (
    "time",
    "symbol",
    "side",  # +1 buy, -1 sell
    "qty",
    "price",  # fill price including slippage
    "fee",
    "slippage",  # cost versus the reference price, quote currency
    "liquidity",  # "maker" or "taker"
    "client_order_id",
    "reason",
)


class LazyFrame:
    """A frame field that may be given as a zero-argument builder (a ``functools.partial`` of a
    module function, so the result still pickles): built on first read, then kept. The
    vectorised path hands its fill and trade records this way, so a run whose fills nobody
    reads does not pay for building them."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> pd.DataFrame:
        if obj is None:
            raise AttributeError(self.name)  # no class-level default: a required field
        value = obj.__dict__[self.name]
        if not isinstance(value, pd.DataFrame):
            value = obj.__dict__[self.name] = value()
        return value

    def __set__(self, obj: Any, value: pd.DataFrame | Callable[[], pd.DataFrame]) -> None:
        obj.__dict__[self.name] = value


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    """Bar-by-bar account state and the trades of one run.

    Series are indexed by bar open timestamps (UTC) and sampled at each bar's close.
    """

    equity: pd.Series  # cash + marked positions
    cash: pd.Series
    exposure: pd.Series  # gross position notional / equity (0 = flat, 1 = fully invested)
    trades: LazyFrame = LazyFrame()  # TRADE_COLUMNS (a DataFrame, or a builder of it)
    fills: LazyFrame = LazyFrame()  # FILL_COLUMNS
    initial_cash: float
    timeframe: str
    calendar: str = "crypto"  # "crypto" (365 days) or "equity" (252 sessions)
    zero_cost: bool = False  # True only when costs were explicitly disabled
    name: str = "strategy"
    prices: pd.DataFrame | None = None  # candles of the (first) symbol, for trade-marker charts
    closes: pd.DataFrame | None = None  # close of every symbol, one column each (price panels)
    benchmarks: dict[str, pd.Series] = field(default_factory=dict)  # name -> equity curve

    @property
    def returns(self) -> pd.Series:
        """Bar returns of equity (first bar relative to the initial cash)."""
        previous = self.equity.shift(1).fillna(self.initial_cash)
        return self.equity / previous - 1.0

    @property
    def fees_paid(self) -> float:
        return float(self.fills["fee"].sum()) if len(self.fills) else 0.0

    @property
    def slippage_paid(self) -> float:
        return float(self.fills["slippage"].sum()) if len(self.fills) else 0.0
