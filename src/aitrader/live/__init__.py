"""Paper and live trading: the ledger (nothing lost), and a local Binance-speaking exchange
emulator (``aitrader.live.emulator``) for tests and offline demos."""

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
