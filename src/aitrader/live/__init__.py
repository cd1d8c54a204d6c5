"""The paper and live runtime: the runner, its feeds and guards, and the ledger (nothing lost).
Where orders execute is a venue (:mod:`aitrader.venues`); the local exchange emulator for tests
and offline demos is :mod:`aitrader.emulator`."""

from aitrader.live.ledger import KILL, PAUSE, Ledger, LedgerRiskStateStore, apply_fill
from aitrader.live.records import (
    Event,
    Flag,
    LedgerError,
    LedgerOrder,
    OrderStatus,
    Redactor,
    secret_values,
)

__all__ = [
    "KILL",
    "PAUSE",
    "Event",
    "Flag",
    "Ledger",
    "LedgerError",
    "LedgerOrder",
    "LedgerRiskStateStore",
    "OrderStatus",
    "Redactor",
    "apply_fill",
    "secret_values",
]
