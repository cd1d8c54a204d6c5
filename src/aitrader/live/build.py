"""Building a run: one path for every venue. :func:`start_runner` wires a venue's broker, the
RiskManager (its state in the ledger), the ManagedPolicy and the Engine into a
:class:`~aitrader.live.runner.Runner` — as ``run_managed_backtest`` wires a backtest — so paper
and live differ only in the venue passed in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine
from aitrader.engine.managed_policy import ManagedPolicy, TargetFeed
from aitrader.live.feeds import BarFeed
from aitrader.live.fingerprint import refuse_other_run, run_fingerprint
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.live.runner import PROGRESS, GuardConfig, Runner
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import RiskState
from aitrader.venues.base import Venue
from aitrader.venues.paper import PaperVenue


@dataclass(frozen=True)
class RunSpec:
    """What a run is besides its venue and bars: the risk settings, its description in the
    ledger (``config``), its ``fingerprint`` (a resumed run must match it), how it survives
    failures, and ``start``: the last bar before a fresh live run (its first checkpoint is
    written before its first bar, so even a crash during that bar resumes)."""

    fingerprint: str
    risk: RiskConfig = field(default_factory=RiskConfig)
    config: Mapping[str, Any] = field(default_factory=dict)
    guard: GuardConfig | None = None
    start: pd.Timestamp | None = None
    symbols: tuple[str, ...] = ()  # the run's markets in order (default: the feeds')


def start_runner(
    venue: Venue, feeds: Sequence[BarFeed], targets: TargetFeed, ledger: Ledger, spec: RunSpec
) -> Runner:
    """A Runner on ``venue`` deciding the feeds' bars with ``targets``. On a ledger holding a
    checkpoint of the same run it resumes (the risk state is taken from the checkpoint, not
    from a bar interrupted half-way); a ledger of another run is refused by the runner."""
    symbols = list(spec.symbols) or [f.symbol for f in feeds]
    state = ledger.load_state(PROGRESS)
    if state is not None and state.get("fingerprint") == spec.fingerprint and "risk" in state:
        LedgerRiskStateStore(ledger).save(RiskState.from_json(state["risk"]))
    broker = venue.broker(symbols, ledger, fresh=state is None)
    manager = RiskManager(spec.risk, store=LedgerRiskStateStore(ledger))
    policy = ManagedPolicy(symbols, targets, manager, broker)
    runner = Runner(
        Engine(policy, broker), feeds, ledger, spec.fingerprint, spec.config, spec.guard
    )
    if state is None and spec.start is not None:
        runner.begin(spec.start)
    return runner


def paper_runner(
    feeds: Sequence[BarFeed],
    targets: TargetFeed,
    ledger: Ledger,
    broker_config: BrokerConfig | None = None,
    risk: RiskConfig | None = None,
    config: Mapping[str, Any] | None = None,
    guard: GuardConfig | None = None,
    fingerprint: str | None = None,
) -> Runner:
    """A paper-trading Runner: :func:`start_runner` on the :class:`PaperVenue` (the backtest's
    SimBroker, writing to the ledger). ``config`` describes the run in the ledger (e.g. the
    replay and strategy) and goes into its fingerprint (default: :func:`run_fingerprint`; a run
    on live bars names itself, as its bars are not known yet)."""
    broker_config, risk = broker_config or BrokerConfig(), risk or RiskConfig()
    fingerprint = fingerprint or run_fingerprint(feeds, targets, broker_config, risk, config)
    spec = RunSpec(fingerprint, risk, dict(config or {}), guard)
    return start_runner(PaperVenue(broker_config), feeds, targets, ledger, spec)


def resume_point(
    ledger: Ledger, fingerprint: str, config: Mapping[str, Any] | None = None
) -> pd.Timestamp | None:
    """The last bar processed by the ledger's run when it is this run (None: a fresh ledger);
    a ledger of another run is refused, naming the settings that differ from ``config``."""
    state = ledger.load_state(PROGRESS)
    refuse_other_run(state, fingerprint, dict(config or {}))
    if state is None:
        return None
    return pd.Timestamp(state["last_bar"])


@contextmanager
def run_ledger(path: Path, secrets: list[str]) -> Iterator[Ledger]:
    """The run's ledger; a file this call created is removed again when the run fails before
    it recorded an order or a bar (a start-up failure leaves no empty ledger behind)."""
    created = not path.exists()
    book = Ledger(path, secrets)
    try:
        with book:
            yield book
    except BaseException:
        if created and _empty(path, secrets):
            for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                file.unlink(missing_ok=True)
        raise


def _empty(path: Path, secrets: list[str]) -> bool:
    with Ledger(path, secrets) as book:
        return not book.orders() and book.equity_curve().empty
