"""``aitrader serve``: token hashes from the command line, clear errors, and the real server
started as a subprocess on a free 127.0.0.1 port, stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from bot_api import TOKEN as BOT_TOKEN
from bot_api import BotApi, BotState
from local_http import serve
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.ops.auth import TokenChecker

runner = CliRunner()


def test_new_token_prints_a_token_and_its_hash() -> None:
    result = runner.invoke(app, ["serve", "--new-token"])
    assert result.exit_code == 0, result.output
    token = re.search(r"keep it secret\): (\S+)", result.stderr)
    hashed = re.search(r"token_hash: (\S+)", result.stdout)
    assert token and hashed
    assert token.group(1) not in result.stdout
    assert TokenChecker(hashed.group(1)).check(token.group(1))


def test_hash_token_reads_stdin_and_refuses_short_tokens() -> None:
    result = runner.invoke(app, ["serve", "--hash-token"], input="my-own-long-token-123\n")
    assert result.exit_code == 0, result.output
    hashed = re.search(r"token_hash: (\S+)", result.stdout)
    assert hashed and TokenChecker(hashed.group(1)).check("my-own-long-token-123")
    short = runner.invoke(app, ["serve", "--hash-token"], input="short\n")
    assert short.exit_code == 2 and "at least 16 characters" in short.output


def test_serve_needs_a_ledger_and_a_token_hash(tmp_path: Path, paper_ledger_file: Path) -> None:
    missing = runner.invoke(app, ["serve", "--ledger", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no such ledger file" in missing.output
    assert not (tmp_path / "nope.db").exists()
    no_hash = runner.invoke(app, ["serve", "--ledger", str(paper_ledger_file)])
    assert no_hash.exit_code == 2 and "api.token_hash is not set" in no_hash.output


def token_hash(token: str) -> str:
    hashed = runner.invoke(app, ["serve", "--hash-token"], input=token + "\n")
    found = re.search(r"token_hash: (\S+)", hashed.stdout)
    assert found, hashed.output
    return found.group(1)


@contextmanager
def serving(
    ledger: Path, env: dict[str, str]
) -> Iterator[tuple[httpx.Client, subprocess.Popen[str]]]:
    """``aitrader serve`` in a subprocess on a free port; an httpx client once it answers.
    Stopped with SIGTERM; the test checks the exit code."""
    entry = "from aitrader.cli import main; main()"
    command = [sys.executable, "-c", entry, "serve", "--ledger", str(ledger), "--port", "0"]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # "serving ... on http://127.0.0.1:PORT (docs: /docs)"
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert url, line
        with httpx.Client(base_url=url.group(1), timeout=30) as http:
            for _ in range(100):  # the socket is bound before uvicorn starts accepting
                try:
                    http.get("/health")
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            yield http, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.mark.slow
def test_serve_answers_on_127_0_0_1_and_stops_on_sigterm(ledger_copy: Path) -> None:
    token = "a-token-for-the-subprocess"
    env = {"AITRADER__API__TOKEN_HASH": token_hash(token)}
    with serving(ledger_copy, env) as (http, process):
        status = http.get("/status", headers={"Authorization": f"Bearer {token}"})
        refused = http.get("/status")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert status.status_code == 200 and status.json()["bars"] == 400
    assert refused.status_code == 401


@pytest.mark.slow
def test_serve_sends_notices_and_answers_telegram_commands(ledger_copy: Path) -> None:
    token = "a-token-for-the-subprocess"
    bot = BotState()
    bot.gate.set()
    bot.updates = [{"update_id": 5, "message": {"chat": {"id": 11}, "text": "/status"}}]
    with serve(BotApi, bot) as bot_url:
        env = {
            "AITRADER__API__TOKEN_HASH": token_hash(token),
            "AITRADER__SECRETS__TELEGRAM_TOKEN": BOT_TOKEN,
            "AITRADER__NOTIFY__TELEGRAM_CHAT_IDS": "[11]",
            "AITRADER__NOTIFY__TELEGRAM_API_URL": bot_url,
            "AITRADER__NOTIFY__POLL_SECONDS": "0.1",
            "AITRADER__NOTIFY__MIN_INTERVAL": "0",
        }
        with serving(ledger_copy, env) as (http, process):
            headers = {"Authorization": f"Bearer {token}"}
            paused = http.post("/control/pause", json={"reason": "lunch"}, headers=headers)
            assert paused.status_code == 200
            deadline = time.monotonic() + 30
            while len(bot.messages) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    texts = sorted(text for _, text in bot.messages)
    assert len(texts) == 2 and {chat for chat, _ in bot.messages} == {11}
    assert texts[0].startswith("status stopped, bars 400")  # the answer to /status
    assert texts[1] == "warning control: flag pause on"  # the notice of the API's pause
