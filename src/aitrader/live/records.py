"""What the ledger hands back (orders with their lifecycle, flags, events) and how it keeps
secrets out of everything it writes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from pydantic import SecretStr

from aitrader.config import Secrets
from aitrader.engine.types import OrderType, TimeInForce
from aitrader.errors import AitraderError

MASK = "**********"


class LedgerError(AitraderError):
    """The ledger refused a write that would make it inconsistent, or could not be opened."""


class OrderStatus(StrEnum):
    """An order's lifecycle; each state is written before the action that leads out of it."""

    INTENT = "intent"  # decided, not sent
    SUBMITTED = "submitted"  # about to be sent (or sent, no answer yet)
    ACKNOWLEDGED = "acknowledged"  # the exchange knows it (exchange order id)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.INTENT: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.ACKNOWLEDGED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.REJECTED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.ACKNOWLEDGED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}
"""Allowed status changes. Fills may still arrive for a cancelled order (they happened first)."""


@dataclass(frozen=True)
class LedgerOrder:
    """One order as the ledger knows it: the intent plus its lifecycle so far."""

    client_order_id: str
    intent_key: str
    symbol: str
    qty: float
    type: OrderType
    limit_price: float | None
    stop_price: float | None
    time_in_force: TimeInForce
    reduce_only: bool
    target_fraction: float | None
    stop_loss: float | None
    take_profit: float | None
    reason: str
    status: OrderStatus
    exchange_order_id: str | None
    filled_qty: float
    avg_fill_price: float
    intent_at: pd.Timestamp
    submitted_at: pd.Timestamp | None
    acknowledged_at: pd.Timestamp | None
    closed_at: pd.Timestamp | None
    error: str | None

    @property
    def remaining_qty(self) -> float:
        return self.qty - self.filled_qty

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> LedgerOrder:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["type"] = OrderType(values["type"])
        values["time_in_force"] = TimeInForce(values["time_in_force"])
        values["status"] = OrderStatus(values["status"])
        values["reduce_only"] = bool(values["reduce_only"])
        for key in ("intent_at", "submitted_at", "acknowledged_at", "closed_at"):
            values[key] = to_timestamp(values[key])
        return cls(**values)


@dataclass(frozen=True)
class Flag:
    """A control flag (``pause``, ``kill`` ...); off when never set."""

    name: str
    on: bool = False
    reason: str = ""
    updated_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class Event:
    """A runtime event: what happened, how bad, and structured details."""

    time: pd.Timestamp
    level: str
    kind: str
    message: str
    payload: dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_datetime(value: pd.Timestamp | datetime) -> datetime:
    """A UTC ``datetime`` (naive values are taken as UTC) for the database."""
    if isinstance(value, datetime) and value.tzinfo is UTC:  # pd.Timestamp too: the fast path
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def to_timestamp(value: datetime | str | None) -> pd.Timestamp | None:
    """What the database returns (SQLite drops the zone) as a tz-aware UTC Timestamp."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def secret_values(secrets: Secrets) -> list[str]:
    """Every secret string in the settings, for :class:`Redactor`."""
    found: list[str] = []
    values: list[SecretStr | None] = [secrets.telegram_token, secrets.api_token]
    values += list(secrets.apprise_urls)
    for creds in secrets.exchanges.values():
        values += [creds.api_key, creds.secret, creds.password]
    for value in values:
        if value is not None and value.get_secret_value():
            found.append(value.get_secret_value())
    return found


class Redactor:
    """Replaces known secret values (and any ``SecretStr``) with a mask before a write."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return value

    def json(self, payload: Mapping[str, Any] | None) -> str:
        """Deterministic JSON of ``payload`` with secrets masked."""
        return self.text(json.dumps(dict(payload or {}), default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        item = value.item()
        return None if isinstance(item, float) and not math.isfinite(item) else item
    return str(value)
