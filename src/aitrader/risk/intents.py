"""What the policy asks for (OrderIntent), what it holds (PortfolioSnapshot), what risk said."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from aitrader.engine.types import Account, Order, Position
from aitrader.errors import RiskRejected

Action = Literal["accept", "resize", "reject"]


@dataclass(frozen=True)
class OrderIntent:
    """A request to change a position by signed ``qty`` (base units) at about ``price``, with
    the protective ``stop`` price (for risk per trade); ``reduce_only`` intents always pass."""

    time: pd.Timestamp
    symbol: str
    qty: float
    price: float
    stop: float | None = None
    reduce_only: bool = False
    reason: str = "signal"
    vol: float | None = None  # the strategy's σ forecast for vol-target sizing (None: none)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.qty) and math.isfinite(self.price) and self.price > 0):
            raise RiskRejected(f"intent on {self.symbol}: qty and price must be finite, price > 0")

    @property
    def side(self) -> int:
        return 0 if self.qty == 0 else (1 if self.qty > 0 else -1)


@dataclass(frozen=True)
class Holding:
    """A signed position quantity and its current mark price."""

    qty: float
    price: float

    @property
    def notional(self) -> float:
        return self.qty * self.price


@dataclass(frozen=True)
class PortfolioSnapshot:
    """Equity and holdings at the moment an intent is checked."""

    equity: float
    holdings: Mapping[str, Holding] = field(default_factory=dict)

    def qty(self, symbol: str) -> float:
        held = self.holdings.get(symbol)
        return 0.0 if held is None else held.qty

    def gross_excluding(self, symbol: str) -> float:
        """Sum of |notional| over every other symbol."""
        return sum(abs(h.notional) for s, h in self.holdings.items() if s != symbol)

    @classmethod
    def from_engine(
        cls, account: Account, positions: Mapping[str, Position], marks: Mapping[str, float]
    ) -> PortfolioSnapshot:
        """Built from the engine's account, positions and the latest prices."""
        holdings = {
            s: Holding(p.qty, float(marks.get(s, p.avg_price)))
            for s, p in positions.items()
            if p.qty != 0
        }
        return cls(account.equity, holdings)


@dataclass(frozen=True)
class RiskDecision:
    """The verdict on one intent: ``approved`` is the signed quantity allowed (0 when rejected)."""

    time: pd.Timestamp
    symbol: str
    action: Action
    reason: str
    requested: float
    approved: float
    intent: OrderIntent | None = field(default=None, repr=False, compare=False)

    @property
    def approved_intent(self) -> OrderIntent | None:
        """The intent resized to the approved quantity (None when rejected)."""
        if self.intent is None or self.approved == 0:
            return None
        return OrderIntent(
            self.time,
            self.symbol,
            self.approved,
            self.intent.price,
            self.intent.stop,
            self.intent.reduce_only,
            self.intent.reason,
        )


def to_order(intent: OrderIntent, client_order_id: str) -> Order:
    """The engine order for an approved intent; the stop becomes a fractional bracket."""
    stop_loss = None
    if intent.stop is not None and not intent.reduce_only:
        stop_loss = abs(intent.price - intent.stop) / intent.price
    return Order(
        symbol=intent.symbol,
        client_order_id=client_order_id,
        qty=intent.qty,
        reduce_only=intent.reduce_only,
        stop_loss=stop_loss,
        reason=intent.reason,
    )


def intent_for_target(
    time: pd.Timestamp,
    symbol: str,
    target_fraction: float,
    price: float,
    portfolio: PortfolioSnapshot,
    stop: float | None = None,
) -> OrderIntent | None:
    """The intent moving ``symbol`` to ``target_fraction`` of equity (None: already there)."""
    held = portfolio.qty(symbol)
    qty = target_fraction * portfolio.equity / price - held
    if abs(qty) * price <= 1e-9 * max(portfolio.equity, 1.0):
        return None
    after = held + qty
    reduce_only = abs(after) < abs(held) and after * held >= 0
    return OrderIntent(time, symbol, qty, price, stop, reduce_only=reduce_only)


def approved_fraction(decision: RiskDecision, portfolio: PortfolioSnapshot, price: float) -> float:
    """The position, as a signed fraction of equity, that the approved quantity leads to."""
    if portfolio.equity <= 0:
        return 0.0
    return (portfolio.qty(decision.symbol) + decision.approved) * price / portfolio.equity
