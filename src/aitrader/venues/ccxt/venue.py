"""The ccxt venue: a run's :class:`~aitrader.venues.ccxt.broker.ExchangeBroker` on a spot
exchange, and :func:`live_runner`, the runtime's Runner on it.

A fresh ledger starts a new run (a new run id, the account's balances as its opening balances);
a ledger holding a checkpoint of the same run resumes it: the broker reloads its state from the
ledger and reconciles with the exchange before the first bar (it refuses to trade when they
cannot be squared), and the feeds back-fill every bar closed since the last one processed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aitrader.engine.managed_policy import TargetFeed
from aitrader.live.build import RunSpec, start_runner
from aitrader.live.feeds import BarFeed
from aitrader.live.fingerprint import live_fingerprint
from aitrader.live.ledger import Ledger
from aitrader.live.runner import GuardConfig, Runner
from aitrader.risk.config import RiskConfig
from aitrader.venues.ccxt.broker import ExchangeBroker
from aitrader.venues.ccxt.calls import ExchangeCalls

LIVE_STATE = "live"
"""Ledger state document naming the live run (its run id, the exchange, the symbols)."""


class CcxtVenue:
    """A spot exchange through a ccxt client (implements :class:`aitrader.venues.Venue`):
    calls retried (:class:`ExchangeCalls`), the run's id kept in the ledger, ``capital`` of
    the quote balance traded (None: all of it)."""

    def __init__(
        self, exchange: Any, calls: ExchangeCalls | None = None, capital: float | None = None
    ) -> None:
        self.exchange, self.capital = exchange, capital
        self.calls = calls or ExchangeCalls(exchange)

    @property
    def name(self) -> str:
        return str(self.exchange.id)

    def broker(self, symbols: Sequence[str], ledger: Ledger, fresh: bool) -> ExchangeBroker:
        info = ledger.load_state(LIVE_STATE) or {}
        run_id = str(info.get("run_id") or uuid.uuid4().hex[:12])
        if not info:
            described = {"run_id": run_id, "exchange": self.name, "symbols": list(symbols)}
            ledger.save_state(LIVE_STATE, described)
        self.calls.ledger = ledger  # retries and bans become ledger events
        self.calls("load_markets")
        broker = ExchangeBroker(
            self.exchange, symbols, ledger, run_id, calls=self.calls, capital=self.capital
        )
        if fresh:
            broker.start()
        return broker


@dataclass(frozen=True)
class LiveSetup:
    """How a live run trades besides its markets, bars and ledger: the risk settings (default
    :class:`RiskConfig`), its description in the ledger (``config``, part of its fingerprint),
    the exchange calls (default: :class:`ExchangeCalls` on the exchange), how it survives failures
    (``guard``), the last bar before a fresh run (``start``) and the ``capital`` of the quote
    balance traded (None: all of it)."""

    risk: RiskConfig | None = None
    config: Mapping[str, Any] | None = None
    calls: ExchangeCalls | None = None
    guard: GuardConfig | None = None
    start: pd.Timestamp | None = None
    capital: float | None = None


def live_runner(
    exchange: Any,
    symbols: Sequence[str],
    targets: TargetFeed,
    feeds: Sequence[BarFeed],
    ledger: Ledger,
    setup: LiveSetup | None = None,
) -> Runner:
    """A Runner trading ``symbols`` on ``exchange``: :func:`~aitrader.live.build.start_runner`
    on a :class:`CcxtVenue`.

    ``feeds`` must start after :func:`~aitrader.live.build.resume_point` (or the latest closed
    bar on a fresh run, ``setup.start``: then the run's first checkpoint is written before its
    first bar, so even a crash during that bar resumes and reconciles); ``targets`` must be
    seeded with the history up to that bar.
    """
    setup = setup or LiveSetup()
    risk = setup.risk or RiskConfig()
    fingerprint = live_fingerprint(symbols, risk, setup.config)
    spec = RunSpec(
        fingerprint, risk, dict(setup.config or {}), setup.guard, setup.start, tuple(symbols)
    )
    venue = CcxtVenue(exchange, setup.calls, setup.capital)
    return start_runner(venue, feeds, targets, ledger, spec)
