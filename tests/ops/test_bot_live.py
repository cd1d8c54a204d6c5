"""``aitrader run`` in live mode against the local exchange emulator (real orders through
ccxt to a Binance-compatible server on 127.0.0.1, REST bars): an operator's flatten reaches the
runner within one bar, closes the position once, the run stays flat until resume, and the
ledger equals the exchange (no order sent twice)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml
from live_helpers import SYMBOL, assert_ledger_equals_exchange
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.live.ledger import Ledger
from aitrader.ops.controls import apply_control, status_payload

KEY, SECRET = "emulator-key-0123456789", "emulator-secret-9876543210"
BARS = 40


def config(tmp: Path, url: str) -> Path:
    values = {
        "data": {"dir": str(tmp / "store")},
        "run": {
            **{"exchange": "binance", "symbols": [SYMBOL], "timeframe": "1h"},
            **{"params": {"fast": 2, "slow": 4}},
        },
        # a spot account pays its fees from the cash: a whole-equity entry would not fit
        "risk": {"limits": {"require_stop": False, "risk_per_trade": 1.0, "max_position": 0.95}},
        "bot": {
            **{"mode": "live", "confirm_live": True, "ledger": str(tmp / "live.db")},
            **{"exchange_url": url, "feed": "rest", "poll": 0.05, "max_bars": BARS},
            **{"api": False, "scheduler": False, "stay_up": False},
        },
    }
    path = tmp / "live-bot.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


class Operator:
    """Flattens once the run holds a position (noting the bars done then), resumes 5 bars
    later; all through the ledger's flags, as the API and Telegram do. Bounded in time."""

    def __init__(self, path: Path) -> None:
        self.path, self.stop = path, threading.Event()
        self.seen = -1
        self.flattened_after: int | None = None
        self.resumed_after: int | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _progress(self) -> bool:
        """The runner has checkpointed a bar (read with plain sqlite3: opening a Ledger while
        the bot creates its tables would race it)."""
        try:
            with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as raw:
                return (
                    raw.execute("SELECT 1 FROM state WHERE name = 'runner'").fetchone() is not None
                )
        except sqlite3.OperationalError:
            return False

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while not self._progress() and time.monotonic() < deadline:  # the bot made the ledger
            time.sleep(0.05)
        with Ledger(self.path) as ledger:
            while not self.stop.wait(0.02) and time.monotonic() < deadline:
                status = status_payload(ledger, events=0)
                if self.flattened_after is None and status["positions"]:
                    apply_control(ledger, "flatten", "operator")
                    self.seen = status["bars"]  # bars done before, and once the flag is set
                    self.flattened_after = status_payload(ledger, events=0)["bars"]
                elif self.flattened_after is not None and status["bars"] > self.flattened_after + 4:
                    apply_control(ledger, "resume", "operator")
                    self.resumed_after = status["bars"]
                    return


@pytest.mark.slow
def test_a_live_bot_flattens_once_within_a_bar(tmp_path: Path) -> None:
    env = {
        "AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY": KEY,
        "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": SECRET,
    }
    with ExchangeEmulator(EmulatorConfig(api_key=KEY, secret=SECRET)) as emu:
        stop = threading.Event()

        def clock() -> None:  # one bar every 0.25 s, at most 400 bars
            for _ in range(400):
                if stop.wait(0.25):
                    return
                emu.advance()

        clock_thread = threading.Thread(target=clock, daemon=True)
        operator = Operator(tmp_path / "live.db")
        clock_thread.start()
        operator.thread.start()
        try:
            args = ["run", "--config", str(config(tmp_path, emu.url))]
            result = CliRunner().invoke(app, args, env=env)
        finally:
            stop.set()
            operator.stop.set()
            clock_thread.join(5)
            operator.thread.join(5)
        assert result.exit_code == 0, result.output
        with Ledger(tmp_path / "live.db") as ledger:
            orders = ledger.orders()
            assert_ledger_equals_exchange(emu, ledger)  # nothing doubled, nothing lost
            bars = int(status_payload(ledger)["bars"])
    assert bars == BARS and f"runtime stopped after {BARS} bars" in result.output
    n, resumed = operator.flattened_after, operator.resumed_after
    assert n is not None and resumed is not None
    flat = [o for o in orders if o.reason == "flatten"]
    assert len(flat) == 1 and flat[0].reduce_only
    decided = int(flat[0].intent_key.split("|")[1])
    # the bar after the flag was set, or the one in hand then (it read the flags before)
    assert operator.seen <= decided <= n + 1
    later = [o for o in orders if int(o.intent_key.split("|")[1]) > decided]
    assert all(int(o.intent_key.split("|")[1]) >= resumed for o in later)
