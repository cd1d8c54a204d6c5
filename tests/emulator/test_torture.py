"""The torture suite (seeded, bounded in time): random SIGKILLs of real live runs across
start-up, mid-bar and in-flight orders with fast and slow restarts, and a fault matrix; after
each scenario the ledger is compared with the emulator's own order and trade record (no client
order id twice, every venue fill in the ledger, position = account, no gap in the equity)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from live_helpers import Hooked, client, drive, quick_calls

from aitrader.emulator import (
    EmulatorConfig,
    ExchangeEmulator,
    Fault,
    order_rejected,
    rate_limited,
    slow,
)
from aitrader.emulator.torture import KINDS, Outcome, Spec, audit, kill_scenario
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus
from aitrader.live.runner import GuardConfig
from aitrader.live.summary import RunSummary
from aitrader.venues.ccxt.calls import ExchangeCalls

KILL_SEEDS = range(7)  # 7 scenarios x 5 SIGKILLs; seed 6 streams bars over websockets
OUTCOMES: dict[int, Outcome] = {}


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_random_sigkills_lose_nothing_and_send_nothing_twice(seed: int, tmp_path: Path) -> None:
    ws = seed == 6
    spec = Spec(seed=seed, bars=20, kills=5, feed="ws" if ws else "rest", drops=2 if ws else 0)
    outcome = kill_scenario(spec, tmp_path)
    OUTCOMES[seed] = outcome
    assert sum(outcome.kills.values()) == 5 and outcome.fast + outcome.slow == 5
    assert outcome.duplicates == 0, "a client order id reached the venue twice"
    assert outcome.lost == 0 and outcome.extra == 0, "venue fills and ledger fills differ"
    assert abs(outcome.position_gap) < 1e-9, "the ledger's position is not the account's"
    assert outcome.gaps == 0 and outcome.equity_rows == spec.bars, "the equity curve has a gap"
    assert outcome.orders >= 2  # the scenario traded
    assert outcome.restarts <= 1, outcome.crash  # a feed failing (then resumed) is rare
    if ws:  # the dropped websockets reconnected, and the ledger says so
        assert outcome.drops == 2
        with Ledger(tmp_path / f"torture-{seed}.db") as ledger:
            feed = [e.message for e in ledger.events("feed")]
            assert [m for m in feed if m.startswith("websocket failed; reconnecting")], feed


def test_every_kind_of_kill_is_covered() -> None:
    kinds = {KINDS[(seed + n) % len(KINDS)] for seed in KILL_SEEDS for n in range(5)}
    assert kinds == set(KINDS) and len(KILL_SEEDS) * 5 >= 30


# -- the fault matrix ------------------------------------------------------------------------

TARGETS = [math.nan, 0.5, 0.5, 0.0, 0.3, 0.3, 0.0, 0.0]
Hook = Callable[[ExchangeEmulator, int], float | None]


def at(bar: int, act: Callable[[ExchangeEmulator], object], until: int | None = None) -> Hook:
    """Act before bar ``bar`` closes; with ``until``, end the outage/skew before that bar."""

    def hook(emu: ExchangeEmulator, n: int) -> None:
        if n == bar:
            act(emu)
        if n == until:
            emu.restore_service()
            emu.skew_clock(0)

    return hook


def ban(emu: ExchangeEmulator) -> None:
    msg = "Way too much request weight used; IP banned until later."
    emu.inject(Fault(418, code=-1003, msg=msg, retry_after="2"))


def wait_out_ban(emu: ExchangeEmulator, n: int) -> float | None:
    at(1, ban)(emu, n)
    return 2.2 if n == 2 else None  # the ban ends before the next bar


def stale(emu: ExchangeEmulator, n: int) -> float | None:
    return 0.6 if n == 2 else None  # no bar for longer than stall_after


MATRIX: dict[str, tuple[Hook, str | None]] = {
    # name: (what happens, the ledger event that must say so: kind:text)
    "5xx burst": (at(2, lambda e: e.outage(503), until=4), "runner:paused, reconciling"),
    "502 on reads": (at(1, lambda e: e.inject(Fault(502, path="/api/v3/account"), 3)), None),
    "429 with Retry-After": (
        at(1, lambda e: e.inject(rate_limited(1, path="/api/v3/order"), 3)),
        "exchange:retry",
    ),
    "418 ban with long Retry-After": (wait_out_ban, "exchange:banned this IP"),
    "slow answers": (at(1, lambda e: e.inject(slow(0.3), 15)), None),
    "answer lost after execution": (
        at(1, lambda e: e.inject(Fault(0, delay=0.9, path="/api/v3/order", method="POST"))),
        "broker:",
    ),
    "rejection": (at(1, lambda e: e.inject(order_rejected())), "broker:rejected"),
    "stale feed": (stale, "feed:stalled"),
    "clock 2 s ahead": (at(2, lambda e: e.skew_clock(-2000), until=4), "runner:InvalidNonce"),
    "clock 15 s behind": (at(2, lambda e: e.skew_clock(15_000), until=4), "runner:InvalidNonce"),
}


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0})
    with ExchangeEmulator(config) as running:
        yield running


def audited(emu: ExchangeEmulator, path: Path, summary: RunSummary, bars: int) -> None:
    outcome = Outcome()
    audit(emu, path, bars, outcome)
    assert outcome.clean, outcome
    assert summary.bars == bars and summary.reconciling is None  # traded again at the end
    with Ledger(path) as ledger:
        assert not [o for o in ledger.open_orders() if o.status is OrderStatus.SUBMITTED]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_fault_matrix(name: str, emu: ExchangeEmulator, tmp_path: Path) -> None:
    hook, event = MATRIX[name]
    exchange = client(emu, timeout_ms=600)
    calls = quick_calls(exchange)
    guard = GuardConfig(backoff_base=0.01, backoff_cap=0.05, stall_after=0.3, check_every=0.05)
    path = tmp_path / "live.db"
    with Ledger(path) as ledger:
        feed = Hooked(emu, len(TARGETS), ledger, lambda n: hook(emu, n))
        summary = drive(ledger, exchange, TARGETS, feed, calls, stop_loss=0.05, guard=guard)
        if event is not None:
            kind, text = event.split(":", 1)
            messages = [e.message for e in ledger.events(kind)]
            assert [m for m in messages if text in m], (event, messages)
        assert len([o for o in ledger.orders() if o.status is OrderStatus.FILLED]) >= 2  # traded
    audited(emu, path, summary, len(TARGETS))


@pytest.mark.slow
def test_a_restart_during_an_outage_waits_reconciling_and_resumes(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    """The venue goes down, the run stops and is started again while it is still down: the
    restart cannot reconcile, so it pauses (reconciling) from its first bar and trades again
    on its own once the venue is back."""
    path, exchange = tmp_path / "live.db", client(emu)
    calls = ExchangeCalls(exchange, attempts=2, max_wait=1.0, sleep=lambda s: None)
    with Ledger(path) as ledger:
        down = Hooked(emu, 3, ledger, lambda n: at(2, lambda e: e.outage(503))(emu, n))
        drive(ledger, exchange, TARGETS, down, calls)
    with Ledger(path) as ledger:  # the same client: its markets are loaded already
        back = Hooked(emu, 5, ledger, lambda n: at(-1, print, until=2)(emu, n))
        summary = drive(ledger, exchange, TARGETS, back, calls)
        runner = [e.message for e in ledger.events("runner")]
        assert [m for m in runner if m.startswith("paused, reconciling at bar")]
        assert [m for m in runner if m.startswith("resumed at bar")]
    audited(emu, path, summary, len(TARGETS))
