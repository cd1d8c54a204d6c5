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
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from live_helpers import SYMBOL, account

from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus

KEY, SECRET = "live-key-0123456789abcdef", "live-secret-fedcba9876543210"
TOTAL_BARS = 30


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
        "-p", "fast=2", "-p", "slow=4", "--stop-loss", "0.05", "--max-bars", str(max_bars),
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
        with closing(sqlite3.connect(path, timeout=5)) as conn:  # reads only; may recover WAL
            return int(conn.execute("select count(*) from equity").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet by the first process
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


def step(emu: ExchangeEmulator, path: Path, proc: subprocess.Popen[str]) -> bool:
    """Close one bar on the exchange and wait until the runtime has processed it (closing
    another when a push was missed during start-up); False once the process has ended."""
    done, deadline = snapshots(path), time.monotonic() + 60
    while time.monotonic() < deadline:
        emu.advance()
        wait = time.monotonic() + 2
        while time.monotonic() < wait:
            if snapshots(path) > done:
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.01)
    proc.kill()
    raise AssertionError("the runtime processed no bar within 60 s")


def run_to_end(emu: ExchangeEmulator, path: Path, proc: subprocess.Popen[str], log: Path) -> None:
    """Close bars one by one until the runtime stops by itself (``--max-bars``)."""
    try:
        while step(emu, path, proc):
            pass
        proc.wait(30)
    except AssertionError as exc:
        lines = [line for line in log.read_text().splitlines() if " DEBUG " not in line]
        raise AssertionError(f"{exc}; its log:\n" + "\n".join(lines[-40:])) from None
    finally:
        proc.kill()


@pytest.mark.timeout(300)
def test_sigkill_at_several_points_loses_nothing_and_sends_nothing_twice(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    path, env = tmp_path / "live.db", environment(tmp_path)
    logs = [tmp_path / f"run{n}.log" for n in range(4)]

    def start(n: int) -> subprocess.Popen[str]:
        # output to a file, never an unread pipe: a full pipe would block the process
        with logs[n].open("w") as out:
            return subprocess.Popen(
                command(emu, path, TOTAL_BARS), env=env, stdout=out, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip

    for n, delay in enumerate((0.0, 0.02, 0.05)):  # killed at different points of a decision
        proc = start(n)
        for _ in range(4):
            assert step(emu, path, proc), logs[n].read_text()[-3000:]
        emu.advance()  # a bar closes and the runtime starts deciding it ...
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # ... and dies somewhere in it
        proc.wait(10)
        emu.advance(2)  # two more bars close while it is down: back-filled on restart
    final = start(3)
    run_to_end(emu, path, final, logs[3])
    outputs = [log.read_text() for log in logs]
    assert final.returncode == 0, outputs[-1][-3000:]
    assert "reconciled:" in outputs[-1]
    with Ledger(path) as ledger:
        assert_ledger_equals_exchange(emu, ledger)
        curve = ledger.equity_curve()
        assert len(curve) == TOTAL_BARS  # every bar decided once, none twice
        assert curve.index.is_monotonic_increasing and curve.index.is_unique
        step_1h = curve.index.to_series().diff().dropna()
        assert (step_1h == pd.Timedelta(hours=1)).all()  # no bar skipped across the restarts
        assert len(ledger.orders()) >= 2  # the run traded
        assert not [o for o in ledger.orders() if o.status is OrderStatus.SUBMITTED]
        starts = [e for e in ledger.events("runner") if e.message.startswith("resumed")]
        assert len(starts) == 3
    # the keys never reach the outputs (debug logs included) or the ledger's files
    data = b"".join(p.read_bytes() for p in tmp_path.glob("live.db*"))
    for secret in (KEY, SECRET):
        leaks = [t[max(0, t.find(secret) - 300) : t.find(secret) + 50] for t in outputs]
        assert not [t for t in outputs if secret in t], leaks
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


@pytest.mark.timeout(120)
def test_two_symbols_trade_as_one_portfolio(tmp_path: Path) -> None:
    """``--symbol`` twice: one runner, one account, both markets' bars decided together."""
    config = EmulatorConfig(
        markets={"BTCUSDT": "BTC-USD-1h", "ETHUSDT": "ETH-USD-1h"},
        balances={"USDT": 10_000.0},
        api_key=KEY,
        secret=SECRET,
    )
    path, log = tmp_path / "pair.db", tmp_path / "pair.log"
    with ExchangeEmulator(config) as emu:
        args = command(emu, path, 12)
        i = args.index("--symbol")
        args[i : i + 2] = ["--symbol", "BTC/USDT", "--symbol", "ETH/USDT"]
        with log.open("w") as out:
            proc = subprocess.Popen(args, env=environment(tmp_path), stdout=out, stderr=out)
        run_to_end(emu, path, proc, log)
        assert proc.returncode == 0, log.read_text()[-3000:]
        with Ledger(path) as ledger:
            assert len(ledger.equity_curve()) == 12
            traded = {o.symbol for o in ledger.orders()}
            assert traded == {"BTC/USDT", "ETH/USDT"}
            balances = account(emu)
            for symbol, asset in (("BTC/USDT", "BTC"), ("ETH/USDT", "ETH")):
                held = ledger.positions().get(symbol)
                assert math.isclose(held.qty if held else 0.0, balances[asset], abs_tol=1e-12)
