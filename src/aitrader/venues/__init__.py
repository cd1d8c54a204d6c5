"""Venues: where orders execute. :class:`~aitrader.venues.base.Venue` is the protocol the
runtime uses; :mod:`aitrader.venues.paper` simulates fills (the backtest's broker, writing to the
ledger) and :mod:`aitrader.venues.ccxt` trades on exchanges through ccxt — the only package that
imports ccxt (imported when a command needs it, not here)."""

from aitrader.venues.base import LedgerBroker, ReconcileError, TransientVenueError, Venue

__all__ = ["LedgerBroker", "ReconcileError", "TransientVenueError", "Venue"]
