"""A torture harness for the live runtime: a real live run in a forked process against the
emulator, SIGKILLed at random points (start-up, mid-bar, an order in flight) and restarted fast
or slowly, then checked against the exchange's own record.

:func:`kill_scenario` runs one seeded scenario and returns what it did and found
(:class:`Outcome`); :func:`audit` is the check after every scenario: no client order id twice
on the venue, every venue fill in the ledger, the position equal to the account, and one equity
row per bar with no gap. The child trades a seeded target script through
:func:`aitrader.venues.ccxt.venue.live_runner` on REST-polled (or websocket) bars.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import random
import signal
import sqlite3
import time
import traceback
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.emulator.server import EmulatorConfig, ExchangeEmulator, Fault
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.live.build import resume_point
from aitrader.live.feeds import BarFeed
from aitrader.live.fingerprint import live_fingerprint
from aitrader.live.ledger import Ledger
from aitrader.live.runner import GuardConfig
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.venues.ccxt.calls import ExchangeCalls
from aitrader.venues.ccxt.client import latest_closed_bar, point_binance, raw_client
from aitrader.venues.ccxt.feeds import PollingConfig, PollingFeed, WebsocketConfig, WebsocketFeed
from aitrader.venues.ccxt.venue import LiveSetup, live_runner

SYMBOL = "BTC/USDT"
RISK = RiskConfig(limits=LimitsConfig(require_stop=False, risk_per_trade=1.0))
KINDS = ("start-up", "mid-bar", "in-flight")
ORDER = ("POST", "/api/v3/order")


@dataclass(frozen=True)
class Spec:
    """One scenario: its seed, bars, kills, the bars' feed and the order timing."""

    seed: int
    bars: int = 24
    kills: int = 5
    feed: str = "rest"  # or "ws"
    recv_window_ms: int = 2000
    stop_loss: float | None = 0.05
    drops: int = 0  # websocket drops during the final run

    def targets(self) -> ArrayFeed:
        """A seeded script of target fractions that trades often (entries, exits, resizes)."""
        rng = random.Random(self.seed)
        fractions, value = [], math.nan
        for _ in range(self.bars):
            if rng.random() < 0.5:
                value = rng.choice([0.0, 0.3, 0.6])
            fractions.append(value)
        stop = math.nan if self.stop_loss is None else self.stop_loss
        return ArrayFeed(
            np.array(fractions, dtype=np.float64).reshape(-1, 1),
            np.full((1, 1), math.nan),
            np.full((1, 1), stop),
            np.full((1, 1), math.nan),
        )


@dataclass
class Outcome:
    """What a scenario did (kills by kind, restarts) and what the audit found."""

    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    fast: int = 0
    slow: int = 0
    drops: int = 0  # websocket connections cut during the final run
    crash: str = ""  # the traceback of a child that stopped by itself (not killed)
    restarts: int = 0  # children started again after stopping by themselves
    duplicates: int = 0  # client order ids sent twice
    lost: int = 0  # venue fills missing from the ledger
    extra: int = 0  # ledger fills the venue does not have
    position_gap: float = 0.0  # ledger position minus the account's holding
    equity_rows: int = 0
    gaps: int = 0  # missing or repeated bars in the equity curve
    orders: int = 0
    fills: int = 0

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.lost or self.extra or self.gaps) and (
            abs(self.position_gap) < 1e-9
        )


def _client(url: str, config: EmulatorConfig, spec: Spec, pro: bool = False) -> Any:
    settings = {"apiKey": config.api_key, "secret": config.secret, "timeout": 3000}
    exchange = raw_client("binance", {**settings, "enableRateLimit": False}, pro)
    ws = {"spot": url.replace("http", "ws") + "/ws"} if pro else None
    point_binance(exchange, url, ws)
    exchange.options["recvWindow"] = spec.recv_window_ms
    return exchange


async def _trade(url: str, path: Path, config: EmulatorConfig, spec: Spec) -> None:
    exchange = _client(url, config, spec)
    described = {"torture": spec.seed}
    with Ledger(path) as ledger:
        start = resume_point(ledger, live_fingerprint([SYMBOL], RISK, described), described)
        if start is None:
            exchange.load_markets()
            start = latest_closed_bar(exchange, SYMBOL, "1h")
        polling = PollingConfig(interval=0.02, max_backoff=0.5)
        feed: BarFeed
        if spec.feed == "ws":
            pro = _client(url, config, spec, pro=True)
            ws = WebsocketConfig(backoff=0.05, idle_poll=1.0, polling=polling)  # REST check
            feed = WebsocketFeed(pro, SYMBOL, "1h", start, ws)
        else:
            feed = PollingFeed(exchange, SYMBOL, "1h", start, polling, exchange.fetch_time)
        calls = ExchangeCalls(exchange, attempts=4, max_wait=2.0)
        guard = GuardConfig(backoff_base=0.05, backoff_cap=0.5)
        setup = LiveSetup(RISK, described, calls=calls, guard=guard, start=start)
        runner = live_runner(exchange, [SYMBOL], spec.targets(), [feed], ledger, setup)
        try:
            await runner.run(spec.bars)
        finally:
            close = getattr(feed, "close", None)
            if close is not None:
                await close()


def _child(url: str, path: str, config: EmulatorConfig, spec: Spec) -> None:
    root = logging.getLogger()  # quiet: no inherited handlers; warnings still reach the ledger
    root.handlers.clear()
    root.setLevel(logging.WARNING)
    try:
        asyncio.run(_trade(url, Path(path), config, spec))
    except BaseException:  # what killed the run, for the scenario's report
        Path(path + ".err").write_text(traceback.format_exc())
        raise


def snapshots(path: Path) -> int:
    """Equity rows (bars processed) in the ledger, read without the application."""
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as conn:
            return int(conn.execute("select count(*) from equity").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _context() -> Any:
    """Children forked from a clean server process with this module preloaded: fast to start,
    and free of the threads and locks of the process that runs the scenarios (a test session
    holds emulator threads; a fork of it can deadlock in the child)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


class Harness:
    """Starts, steps and kills the child of one scenario."""

    def __init__(self, emu: ExchangeEmulator, path: Path, spec: Spec) -> None:
        self.emu, self.path, self.spec = emu, path, spec
        self.rng = random.Random(spec.seed * 7919)
        self.context = _context()
        self.proc: Any = None

    def start(self) -> None:
        args = (self.emu.url, str(self.path), self.emu.config, self.spec)
        self.proc = self.context.Process(target=_child, args=args, daemon=True)
        self.proc.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.join(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def step(self, timeout: float = 60.0) -> bool:
        """Close one bar and wait until the child recorded it (closing another when a push was
        missed); False when the child has ended."""
        done, deadline = snapshots(self.path), time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.emu.advance()
            wait = time.monotonic() + 1.5
            while time.monotonic() < wait:
                if snapshots(self.path) > done:
                    return True
                if not self.alive():
                    return False
                time.sleep(0.005)
        raise TimeoutError(f"seed {self.spec.seed}: no bar processed within {timeout:g} s")

    def wait_for(self, check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.002)
        return False


def _kill_once(h: Harness, kind: str, outcome: Outcome) -> None:
    """Start the child and SIGKILL it at a point of ``kind``."""
    h.start()
    if kind == "start-up":
        time.sleep(h.rng.uniform(0.0, 0.6))
    elif kind == "mid-bar":
        if not h.step():
            return
        h.emu.advance()  # a bar closes and the runtime starts deciding it ...
        time.sleep(h.rng.uniform(0.0, 0.08))  # ... and dies somewhere in it
    else:  # in flight: the order reached the exchange, its answer is slow
        sent = h.emu.requests.count(ORDER)
        h.emu.inject(Fault(0, delay=h.rng.uniform(0.05, 0.6), path=ORDER[1], method="POST"))
        for _ in range(6):
            if h.emu.requests.count(ORDER) > sent or not h.step():
                break
        h.wait_for(lambda: h.emu.requests.count(ORDER) > sent, 2.0)
        time.sleep(h.rng.uniform(0.0, 0.03))
        h.emu.restore_service()  # an unhit slow answer must not hit the restart
    h.kill()
    outcome.kills[kind] += 1


def kill_scenario(spec: Spec, workdir: Path) -> Outcome:
    """One seeded scenario: ``spec.kills`` SIGKILLs with fast or slow restarts, a final run to
    the end, then the audit."""
    outcome = Outcome()
    config = EmulatorConfig(markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0})
    path = workdir / f"torture-{spec.seed}.db"
    with ExchangeEmulator(config) as emu:
        h = Harness(emu, path, spec)
        for n in range(spec.kills):
            _kill_once(h, KINDS[(spec.seed + n) % len(KINDS)], outcome)
            if h.rng.random() < 0.5:
                emu.advance(h.rng.randint(1, 3))  # slow: bars close while it is down
                outcome.slow += 1
            else:
                outcome.fast += 1
        _final_run(h, outcome)
        audit(emu, path, spec.bars, outcome)
        crash = path.with_name(path.name + ".err")
        outcome.crash = crash.read_text()[-2000:] if crash.exists() else ""
    return outcome


def _final_run(h: Harness, outcome: Outcome) -> None:
    """Run to the end (websocket drops at fixed steps); a child that stops by itself before the
    end (a feed failed: it says so and exits) is started again, as a supervisor would."""
    steps = 0
    for _ in range(3):
        h.start()
        while h.step():
            steps += 1
            due = steps % 4 == 0 and outcome.drops < h.spec.drops  # cut the streams mid-run
            if due and h.wait_for(lambda: bool(h.emu.streams.connections), 5.0):
                outcome.drops += h.emu.drop_websockets() > 0
        h.proc.join(30)
        if snapshots(h.path) >= h.spec.bars:
            return
        outcome.restarts += 1


def audit(emu: ExchangeEmulator, path: Path, bars: int, outcome: Outcome) -> None:
    """Compare the ledger with the emulator's order and trade record."""
    with Ledger(path) as ledger:
        ids = [o.client_order_id for o in emu.venue.orders.values()]
        outcome.duplicates = len(ids) - len(set(ids))
        venue = {f"binance:{t.trade_id}" for t in emu.venue.trades}
        booked = set(ledger.fills()["trade_id"])
        outcome.lost, outcome.extra = len(venue - booked), len(booked - venue)
        held = ledger.positions().get(SYMBOL)
        with emu.venue.lock:
            account = emu.venue.free["BTC"] + emu.venue.locked["BTC"]
        outcome.position_gap = (held.qty if held else 0.0) - account
        curve = ledger.equity_curve()
        outcome.equity_rows = len(curve)
        steps = curve.index.to_series().diff().dropna()
        outcome.gaps = abs(bars - len(curve)) + int((steps != pd.Timedelta(hours=1)).sum())
        outcome.orders, outcome.fills = len(ids), len(venue)
