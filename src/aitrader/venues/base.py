"""The Venue protocol: where a run's orders execute, and the errors a venue reports.

The runtime (:mod:`aitrader.live`) asks a :class:`Venue` for the broker of one run and drives
it bar by bar; it never talks to an exchange library itself. A venue reports a failure a retry
may fix as :class:`~aitrader.errors.TransientBrokerError` (e.g. :class:`TransientVenueError`)
and a ledger it cannot square with the account as :class:`ReconcileError` — the runner catches
these types, never a client library's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aitrader.engine.loop import Broker
from aitrader.engine.types import Position
from aitrader.errors import BrokerError, TransientBrokerError

if TYPE_CHECKING:
    from aitrader.live.ledger import Ledger


class TransientVenueError(TransientBrokerError):
    """A venue call failed in a way a retry may fix (network, 5xx, rate limit, outage)."""


class ReconcileError(BrokerError):
    """The ledger and the venue disagree in a way that cannot be repaired automatically."""


@runtime_checkable
class LedgerBroker(Broker, Protocol):
    """A broker the runner can checkpoint and resume: the paper broker, or a live exchange
    broker whose ``restore`` reloads its state from the ledger and reconciles with the
    exchange. Both must be idempotent on client order ids and trade ids (see
    :class:`aitrader.live.runner.Runner`)."""

    @property
    def positions(self) -> Mapping[str, Position]: ...

    durable: bool
    """True: each bar's ledger transaction is synced to disk (``synchronous=FULL``) and the
    broker commits before every request it sends — a venue outside the process acts on what
    the ledger says. False (paper): a bar lost to a power cut is redone identically."""

    def checkpoint(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class Venue(Protocol):
    """Where a run's orders execute: simulated fills (:class:`aitrader.venues.paper.PaperVenue`)
    or an exchange (:class:`aitrader.venues.ccxt.venue.CcxtVenue`)."""

    @property
    def name(self) -> str:
        """A short name for logs and the run's description (``paper``, ``binance``)."""
        ...

    def broker(self, symbols: Sequence[str], ledger: Ledger, fresh: bool) -> LedgerBroker:
        """The run's broker, writing to ``ledger``; ``fresh``: the ledger holds no checkpoint
        yet, so a new run starts (a resumed run's broker is restored by the runner)."""
        ...
