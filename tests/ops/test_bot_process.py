"""``aitrader run``: the real bot process (paper replay of the bundled BTC-USD sample, the API
on uvicorn at a free 127.0.0.1 port, the scheduler, the notifier sending to a local server
that speaks the Telegram Bot API, commands from allow-listed chats only) stopped by SIGTERM
mid-replay and restarted: it resumes, and every fill reaches Telegram exactly once and equals
an uninterrupted ``aitrader paper``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from bot_api import TOKEN as BOT_TOKEN
from bot_api import BotApi, BotState
from local_http import serve
from ops_helpers import TOKEN, TOKEN_HASH
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.live.ledger import Ledger
from aitrader.live.runner import STATUS
from aitrader.ops.views import ledger_fill
from aitrader.ops.watch import fill_text

BARS = 400
CHAT = 11


def bot_config(tmp: Path, bot_url: str) -> Path:
    config = {
        "data": {"dir": str(tmp / "store")},
        "run": {"data": ["sample:BTC-USD-1h"]},
        "bot": {
            **{"ledger": str(tmp / "bot.db"), "replay_bars": BARS},
            **{"replay_speed": 3600 * 40, "stay_up": False},  # 40 bars a second
        },
        "api": {"port": 0, "token_hash": TOKEN_HASH, "cache_seconds": 0},
        "notify": {
            **{"telegram_chat_ids": [CHAT], "telegram_api_url": bot_url},
            **{"poll_seconds": 0.1, "min_interval": 0, "backoff": 0},
        },
        "schedule": {
            "store": str(tmp / "schedule.db"),
            "jobs": {name: {"enabled": False} for name in ("data-sync", "scan")},
        },
    }
    path = tmp / "bot.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def bot_process(config: Path) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """``aitrader run --config CONFIG`` in a subprocess: the process, its API URL (from the
    start-up line) and its stderr lines so far (read on a thread). Killed if still running."""
    entry = "from aitrader.cli import main; main()"
    env = {**os.environ, "AITRADER__SECRETS__TELEGRAM_TOKEN": BOT_TOKEN}
    command = [sys.executable, "-c", entry, "run", "--config", str(config)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert process.stderr is not None
    stream = process.stderr
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    try:
        started = wait_for(lambda: any("bot running" in line for line in lines), 120)
        assert started, "".join(lines)
        url = re.search(r"API on (http://127\.0\.0\.1:\d+)", "".join(lines))
        assert url, "".join(lines)
        yield process, url.group(1), lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        reader.join(10)


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def reference_fills(tmp: Path) -> list[tuple[object, ...]]:
    """The fills of the same replay run without a stop by ``aitrader paper``."""
    path = tmp / "reference.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", str(BARS), "--ledger", str(path)]
    result = CliRunner().invoke(app, args, env={"AITRADER__DATA__DIR": str(tmp / "store")})
    assert result.exit_code == 0, result.output
    with Ledger(path) as ledger:
        return [(f.time, f.qty, f.price, f.fee) for f in map(ledger_fill, fill_rows(ledger))]


def fill_rows(ledger: Ledger) -> list[dict[str, object]]:
    return ledger.rows_after("fills", 0, limit=1 << 30)


@pytest.mark.slow
def test_the_bot_serves_notifies_stops_on_sigterm_and_resumes(tmp_path: Path) -> None:
    bot = BotState()
    bot.gate.set()
    bot.updates = [  # Telegram commands: one from the allowed chat, a kill from a stranger
        {"update_id": 7, "message": {"chat": {"id": CHAT}, "text": "/balance"}},
        {"update_id": 8, "message": {"chat": {"id": 99}, "text": "/kill"}},
    ]
    with serve(BotApi, bot) as bot_url:
        config = bot_config(tmp_path, bot_url)
        with bot_process(config) as (process, url, _):
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:

                def progressed() -> bool:
                    return int(http.get("/status").json()["bars"]) >= 100

                assert wait_for(progressed, 120)
                metrics = http.get("/metrics", headers={})
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=60) == 0
        with Ledger(tmp_path / "bot.db") as ledger:
            stopped_at = int(ledger.load_state("runner")["bars"])
            status = ledger.load_state(STATUS)["status"]
        assert 100 <= stopped_at < BARS and status == "stopped"
        assert re.search(r"^aitrader_bars \d+", metrics.text, re.M)
        with bot_process(config) as (process, _, lines):  # stay_up off: ends with the replay
            assert process.wait(timeout=120) == 0
        with Ledger(tmp_path / "bot.db") as ledger:
            fills = [ledger_fill(row) for row in fill_rows(ledger)]
            resumed = [e.message for e in ledger.events("runner") if "resumed" in e.message]
            bars = int(ledger.load_state("runner")["bars"])
    assert bars == BARS and resumed[0].startswith(f"resumed after bar {stopped_at} ")
    assert any(f"runtime stopped after {BARS} bars" in line for line in lines)
    # every fill once in the ledger, as an uninterrupted paper run makes them
    assert [(f.time, f.qty, f.price, f.fee) for f in fills] == reference_fills(tmp_path)
    # ... and once on Telegram, across the restart
    sent = [text for chat, text in bot.messages if text.startswith(("BUY ", "SELL "))]
    assert sent == [fill_text(f) for f in fills] and len(sent) >= 4
    assert {chat for chat, _ in bot.messages} == {CHAT}
    assert sum(text.startswith("bot started") for _, text in bot.messages) == 2
    # /balance answered (once per process: each polls getUpdates from offset 0); the
    # stranger's /kill ignored: no kill switch, and the fills equal the reference above
    assert sum(text.startswith(("equity ", "no equity")) for _, text in bot.messages) == 2
    with Ledger(tmp_path / "bot.db") as ledger:
        assert "kill" not in ledger.flags()
