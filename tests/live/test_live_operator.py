"""What an operator sees at start-up: no network gives one line with cause and fix (no
traceback, no empty ledger file left), and a resume with other settings is refused naming
what differs (``--capital`` included)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.emulator import EmulatorConfig, ExchangeEmulator

KEY, SECRET = "operator-key-0123456789", "operator-secret-9876543210"
MARKET = ["--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
COMMANDS = {"paper": ["paper", *MARKET], "live": ["live", *MARKET, "--confirm-live"]}
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "AITRADER__DATA__DIR": str(tmp_path / "store"),
        "AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY": KEY,
        "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": SECRET,
    }


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("url", "why"),
    [
        (closed_port(), "Connection refused"),
        ("http://aitrader-no-such-host.invalid", "not known"),
    ],
)
def test_no_network_is_one_line_with_cause_and_fix(
    tmp_path: Path, env: dict[str, str], command: str, url: str, why: str
) -> None:
    path = tmp_path / "run.db"
    args = [*COMMANDS[command], "--api-url", url, "--feed", "rest", "--ledger", str(path)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: cannot reach binance at {url}: ")
    assert why in lines[0] and "run the same command again" in lines[0]
    assert "Traceback" not in result.output and "signature" not in result.output
    assert not list(tmp_path.glob("run.db*"))  # no empty ledger left behind


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(
        markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0}, api_key=KEY, secret=SECRET
    )
    with ExchangeEmulator(config) as running:
        stop = threading.Event()

        def clock() -> None:
            while not stop.wait(0.1):
                running.advance()

        ticking = threading.Thread(target=clock, daemon=True)
        ticking.start()
        yield running
        stop.set()
        ticking.join(5)


@pytest.mark.slow
def test_a_resume_with_another_capital_is_refused_naming_it(
    tmp_path: Path, env: dict[str, str], emu: ExchangeEmulator
) -> None:
    path = tmp_path / "live.db"
    base = [*COMMANDS["live"], "--api-url", emu.url, "--feed", "rest", "--poll", "0.05"]
    base += ["-p", "fast=2", "-p", "slow=4", "--ledger", str(path), "--max-bars", "2"]
    first = runner.invoke(app, [*base, "--capital", "2000"], env=env)
    assert first.exit_code == 0, first.output
    orders = len([r for r in emu.requests if r == ("POST", "/api/v3/order")])
    again = runner.invoke(app, [*base, "--capital", "3000", "--max-bars", "4"], env=env)
    assert again.exit_code == 2, again.output
    text = " ".join(again.output.split())
    assert "the ledger holds another run (capital: ledger 2000.0, now 3000.0)" in text
    assert len([r for r in emu.requests if r == ("POST", "/api/v3/order")]) == orders
    assert path.exists()  # the run's ledger stays
