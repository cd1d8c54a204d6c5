"""``aitrader live`` end to end against the local exchange emulator: real orders through the
real ccxt client, SIGKILL at several points and restarts (nothing lost, nothing sent twice,
positions equal the exchange's), and the API keys never leave the environment."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from exchange_helpers import SYMBOL, account

from aitrader.live.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus

KEY, SECRET = "live-key-0123456789abcdef", "live-secret-fedcba9876543210"
TOTAL_BARS = 16


class Clock:
    """Advances the emulator one bar every ``period`` seconds in a background thread."""

    def __init__(self, emu: ExchangeEmulator, period: float) -> None:
        self.emu, self.period = emu, period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            self.emu.advance()

    def __enter__(self) -> Clock:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(
        markets={"BTCUSDT": "BTC-USD-1h"},
        balances={"USDT": 10_000.0},
        api_key=KEY,
        secret=SECRET,
    )
    with ExchangeEmulator(config) as running:
        yield running


def command(emu: ExchangeEmulator, ledger: Path, max_bars: int) -> list[str]:
    aitrader = str(Path(sys.executable).with_name("aitrader"))
    return [
        aitrader, "--log-level", "debug", "live", "--exchange", "binance", "--symbol", SYMBOL,
        "--timeframe", "1h", "--confirm-live", "--api-url", emu.url, "--ws-url", emu.ws_url,
        "--ledger", str(ledger),
        "--fast", "2", "--slow", "4", "--stop-loss", "0.05", "--max-bars", str(max_bars),
        "--poll", "0.05",
    ]  # fmt: skip


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AITRADER__DATA__DIR": str(tmp_path / "store"),
        "AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY": KEY,
        "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": SECRET,
    }


def snapshots(path: Path) -> int:
    """Equity snapshots (bars processed) in the ledger, read without the application."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("select count(*) from equity").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def assert_ledger_equals_exchange(emu: ExchangeEmulator, ledger: Ledger) -> None:
    ids = [o.client_order_id for o in emu.venue.orders.values()]
    assert len(ids) == len(set(ids)), "an order was sent twice"
    assert sorted(ledger.fills()["trade_id"]) == sorted(
        f"binance:{t.trade_id}" for t in emu.venue.trades
    ), "a fill was lost or recorded twice"
    held = ledger.positions().get(SYMBOL)
    assert math.isclose(held.qty if held else 0.0, account(emu)["BTC"], abs_tol=1e-12)
    assert {o.client_order_id for o in ledger.orders() if o.exchange_order_id} == set(ids)


@pytest.mark.timeout(240)
def test_sigkill_at_several_points_loses_nothing_and_sends_nothing_twice(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    path, env = tmp_path / "live.db", environment(tmp_path)
    outputs: list[str] = []
    with Clock(emu, 0.3):
        for kill_after in (3, 7, 11):  # bars processed when the process is killed
            proc = subprocess.Popen(
                command(emu, path, TOTAL_BARS), env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while snapshots(path) < kill_after and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[0]
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            outputs.append(proc.communicate(timeout=10)[0])
            assert snapshots(path) >= kill_after
        final = subprocess.run(
            command(emu, path, TOTAL_BARS), env=env, capture_output=True, text=True, timeout=90
        )
    outputs += [final.stdout, final.stderr]
    assert final.returncode == 0, final.stdout + final.stderr
    assert "reconciled:" in final.stdout
    with Ledger(path) as ledger:
        assert_ledger_equals_exchange(emu, ledger)
        curve = ledger.equity_curve()
        assert len(curve) == TOTAL_BARS  # every bar decided once, none twice
        assert curve.index.is_monotonic_increasing and curve.index.is_unique
        assert len(ledger.orders()) >= 2  # the run traded
        assert not [o for o in ledger.orders() if o.status is OrderStatus.SUBMITTED]
        starts = [e for e in ledger.events("runner") if e.message.startswith("resumed")]
        assert len(starts) == 3
    # the keys never reach the outputs (debug logs included) or the ledger's files
    data = b"".join(p.read_bytes() for p in tmp_path.glob("live.db*"))
    for secret in (KEY, SECRET):
        leaks = [
            t[max(0, t.find(secret) - 300) : t.find(secret) + 100] for t in outputs if secret in t
        ]
        assert not leaks, leaks[0]
        assert secret.encode() not in data


def test_a_wrong_secret_is_refused_by_the_exchange_and_never_printed(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    env = {**environment(tmp_path), "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": "wrong-1234"}
    result = subprocess.run(
        command(emu, tmp_path / "bad.db", 2), env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "Signature" in text or "signature" in text
    assert "wrong-1234" not in text and KEY not in text
    assert ("POST", "/api/v3/order") not in emu.requests
