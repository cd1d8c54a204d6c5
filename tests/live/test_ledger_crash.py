"""Crash safety and concurrency: a writer process is SIGKILLed mid-stream; a reader runs while
another process writes. Every reopened ledger must be consistent."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aitrader.live import Ledger, OrderStatus

WRITER = """
import sys, pandas as pd
from aitrader.engine.types import Fill, Liquidity, Order
from aitrader.live import Ledger
ledger = Ledger(sys.argv[1])
t0 = pd.Timestamp("2024-01-01", tz="UTC")
for i in range(int(sys.argv[2])):
    qty = 1.0 if i % 2 == 0 else -0.5
    coid = ledger.record_intent(Order("BTC/USDT", f"o{i}", qty), intent_key=f"bar-{i}")
    ledger.mark_submitted(coid)
    ledger.mark_acknowledged(coid, str(1000 + i))
    for part in range(2):
        f = Fill(t0, "BTC/USDT", qty / 2, 100.0 + i, 0.01, 0.0, Liquidity.TAKER, coid)
        ledger.record_fill(f, f"t{i}-{part}")
    ledger.log_event("bar", f"bar {i} done")
    print(i, flush=True)
"""


def start_writer(path: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_consistent(path: Path) -> int:
    """Integrity, foreign keys, orders == sum of their fills, position == sum of all fills."""
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
    with Ledger(path) as ledger:
        fills = ledger.fills()
        for order in ledger.orders():
            mine = fills[fills["client_order_id"] == order.client_order_id]
            signed = float((mine["qty"] * mine["side"]).sum())
            assert order.filled_qty == pytest.approx(signed)
            if order.status is OrderStatus.FILLED:
                assert len(mine) == 2
        assert set(fills["client_order_id"]) <= {o.client_order_id for o in ledger.orders()}
        total = float((fills["qty"] * fills["side"]).sum())
        held = ledger.positions().get("BTC/USDT")
        assert (held.qty if held else 0.0) == pytest.approx(total)
        return len(ledger.orders())


@pytest.mark.parametrize("kill_after", [3, 11, 24])
def test_sigkill_mid_write_leaves_a_consistent_ledger(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "crash.db"
    proc = start_writer(path, 10_000)
    assert proc.stdout is not None
    for _ in range(kill_after):
        assert proc.stdout.readline(), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    orders = assert_consistent(path)
    assert orders >= kill_after
    resumed = start_writer(path, orders + 3)  # the same intents again: no duplicates
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert assert_consistent(path) == orders + 3
    with Ledger(path) as ledger:
        assert all(o.status is OrderStatus.FILLED for o in ledger.orders())


def test_reader_sees_consistent_snapshots_while_a_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    Ledger(path).close()
    proc = start_writer(path, 60)
    seen: list[int] = []
    with Ledger(path) as reader:
        deadline = time.monotonic() + 45
        while proc.poll() is None and time.monotonic() < deadline:
            fills = reader.fills()
            orders = {o.client_order_id for o in reader.orders()}
            assert set(fills["client_order_id"]) <= orders
            seen.append(len(fills))
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert seen == sorted(seen) and len(seen) > 3
    assert assert_consistent(path) == 60
