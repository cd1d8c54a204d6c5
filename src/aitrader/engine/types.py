"""Engine value types: bars, orders, fills, positions and the account (frozen where possible)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import pandas as pd

from aitrader.errors import BrokerError


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """GTC rests until filled or cancelled; IOC fills what it can now; FOK all or nothing."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


T = TypeVar("T")
_new = object.__new__
_set = object.__setattr__


def built(cls: type[T], fields: dict[str, Any]) -> T:
    """``cls(**fields)`` for a plain frozen dataclass, without its per-field ``__init__`` (the
    engine's hot loops): the same object — class, fields, equality, hash and repr. Every field
    must be given; nothing is validated (only for types without ``__post_init__``)."""
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    return obj


REASONS: tuple[str, ...] = ("signal", "stop_loss", "take_profit", "liquidation", "end")
"""Fill / exit reasons; the compiled kernel stores their index."""


@dataclass(frozen=True, init=False)
class Bar:
    """One candle of one symbol; ``time`` is the bar's open time (UTC).

    ``Bar(symbol, time, open, high, low, close, volume)``, a frozen dataclass. ``ns`` is the
    open time as nanoseconds since the epoch (UTC; a naive time counts as UTC). A bar made from
    stored candles (:meth:`from_ns`, as :func:`~aitrader.engine.loop.replay` makes them) builds
    its ``pd.Timestamp`` when ``time`` is first read: the engine's per-bar steps read ``ns``, and
    most bars' times are never read.
    """

    symbol: str
    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    ns: int = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        symbol: str,
        time: pd.Timestamp,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        stamp = time if isinstance(time, pd.Timestamp) else pd.Timestamp(time)
        fields = {"symbol": symbol, "ns": int(stamp.value), "open": open, "high": high}
        fields |= {"low": low, "close": close, "volume": volume, "_time": time}
        _set(self, "__dict__", fields)

    @classmethod
    def from_ns(
        cls,
        symbol: str,
        ns: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        tz: Any = "UTC",
    ) -> Bar:
        """A bar opening ``ns`` nanoseconds after the epoch (its ``time`` in ``tz``; None:
        naive), made quickly (see :func:`built`)."""
        fields = {"symbol": symbol, "ns": ns, "open": open, "high": high, "low": low}
        fields["close"], fields["volume"] = close, volume
        if tz != "UTC":
            fields["_tz"] = tz
        bar = _new(cls)  # built(cls, fields), inline: one call less per bar
        _set(bar, "__dict__", fields)
        return bar


def _bar_time(bar: Bar) -> pd.Timestamp:
    """A bar's open time, built from ``ns`` at the first read (:meth:`Bar.from_ns`)."""
    fields = bar.__dict__
    stamp = fields.get("_time")
    if stamp is None:
        stamp = fields["_time"] = pd.Timestamp(fields["ns"], tz=fields.get("_tz", "UTC"))
    return stamp


setattr(Bar, "time", property(_bar_time, doc="The bar's open time (UTC)."))  # noqa: B010


@dataclass(frozen=True)
class Order:
    """An order intent. ``qty`` is signed (+ buy, - sell) in base units.

    ``target_fraction`` instead sizes a market order at fill time so the position becomes that
    fraction of equity (signed). ``stop_loss``/``take_profit`` are fractions of the entry price
    that attach a bracket to the resulting position; ``take_profit_share`` of the position
    closes at the take-profit (a trade plan's TP1; None: all of it).
    """

    symbol: str
    client_order_id: str
    qty: float = 0.0
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    target_fraction: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    reason: str = "signal"
    take_profit_share: float | None = None  # of the position the take-profit closes (None: all)

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise BrokerError(f"order on {self.symbol}: client_order_id must not be empty")
        if self.target_fraction is None and (self.qty == 0 or not math.isfinite(self.qty)):
            raise BrokerError(f"order {self.client_order_id}: qty must be finite and non-zero")
        if self.target_fraction is not None and self.type is not OrderType.MARKET:
            raise BrokerError(f"order {self.client_order_id}: target sizing is for market orders")
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise BrokerError(f"order {self.client_order_id}: limit_price required iff limit type")
        if needs_stop != (self.stop_price is not None):
            raise BrokerError(f"order {self.client_order_id}: stop_price required iff stop type")

    @property
    def side(self) -> int:
        return 1 if self.qty > 0 else -1


@dataclass(frozen=True)
class Fill:
    """An execution. ``qty`` is signed; ``price`` includes spread, slippage and impact."""

    time: pd.Timestamp
    symbol: str
    qty: float
    price: float
    fee: float
    slippage: float
    liquidity: Liquidity
    client_order_id: str
    reason: str = "signal"

    @property
    def side(self) -> int:
        return 1 if self.qty > 0 else -1


@dataclass(frozen=True)
class Position:
    """A net position: signed ``qty``, average entry price, realised P&L (before fees)."""

    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realised_pnl: float = 0.0

    @property
    def side(self) -> int:
        return 0 if self.qty == 0 else (1 if self.qty > 0 else -1)

    def unrealised_pnl(self, price: float) -> float:
        return self.qty * (price - self.avg_price)

    def apply(self, qty: float, price: float) -> Position:
        """The position after a fill of signed ``qty`` that never crosses zero."""
        if self.qty == 0:
            return self._with(qty=qty, avg_price=price)
        if (qty > 0) == (self.qty > 0):
            size = abs(self.qty) + abs(qty)
            avg = (self.avg_price * abs(self.qty) + price * abs(qty)) / size
            return self._with(qty=self.qty + qty, avg_price=avg)
        if abs(qty) > abs(self.qty):
            raise BrokerError(f"{self.symbol}: a fill may not cross zero; split it")
        realised = self.realised_pnl + (price - self.avg_price) * -qty
        remaining = 0.0 if qty == -self.qty else self.qty + qty
        return self._with(qty=remaining, realised_pnl=realised)

    def _with(self, **changes: float) -> Position:
        """``dataclasses.replace(self, **changes)``, made quickly (see :func:`built`)."""
        return built(type(self), {**vars(self), **changes})


@dataclass(frozen=True)
class Account:
    """Cash, marked equity and margin in use at one moment."""

    cash: float
    equity: float
    margin_used: float

    @property
    def margin_available(self) -> float:
        return max(0.0, self.equity - self.margin_used)
