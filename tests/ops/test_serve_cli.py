"""``aitrader serve``: token hashes from the command line, clear errors, and the real server
started as a subprocess on a free 127.0.0.1 port, stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def test_serve_answers_on_127_0_0_1_and_stops_on_sigterm(ledger_copy: Path) -> None:
    token = "a-token-for-the-subprocess"
    hashed = runner.invoke(app, ["serve", "--hash-token"], input=token + "\n")
    token_hash = re.search(r"token_hash: (\S+)", hashed.stdout).group(1)  # type: ignore[union-attr]
    env = {**os.environ, "AITRADER__API__TOKEN_HASH": token_hash}
    entry = "from aitrader.cli import main; main()"
    command = [sys.executable, "-c", entry, "serve", "--ledger", str(ledger_copy)]
    process = subprocess.Popen(
        [*command, "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
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
            status = http.get("/status", headers={"Authorization": f"Bearer {token}"})
            refused = http.get("/status")
        assert status.status_code == 200 and status.json()["bars"] == 400
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0
