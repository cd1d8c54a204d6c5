"""Every data command that goes to the network, against a closed port on 127.0.0.1 and a host
that does not resolve: one line naming the cause and the fix, no traceback, no minute of
retries."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from factories import candles
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.provenance import Write
from aitrader.data.sources.network import has_default_route
from aitrader.data.store import DatasetKey, Store

runner = CliRunner()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def targets() -> dict[str, tuple[str, str]]:
    """Name → (base URL, what the message must say)."""
    port = closed_port()
    return {
        "closed-port": (f"http://127.0.0.1:{port}", f"127.0.0.1:{port} refused the connection"),
        "no-dns": ("http://aitrader-test.invalid", "cannot resolve"),
    }


COMMANDS = {
    "download-binance": (
        ["data", "download", "-e", "binance", "-s", "BTC/USDT", "--since", "2024-01-01"],
        "binance:public={base}/api/v3",
    ),
    "download-yahoo": (
        ["data", "download", "--source", "yahoo", "-s", "SPY", "-t", "1d", "--since", "2024-01-01"],
        "yahoo:base={base}",
    ),
    "sync": (["data", "sync"], "binance:public={base}/api/v3"),
    "sync-yahoo": (["data", "sync"], "yahoo:base={base}"),
}


@pytest.mark.parametrize("target", ["closed-port", "no-dns"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_traceback_and_no_retries_for_a_network_that_is_not_there(
    tmp_path: Path, command: str, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "store")
    if command == "sync":
        store.write(DatasetKey("binance", "BTC/USDT", "1h"), candles(5), Write("ccxt:binance"))
    if command == "sync-yahoo":
        store.write(DatasetKey("yahoo", "SPY", "1d"), candles(5, freq="1D"), Write("yahoo"))
    base, cause = targets()[target]
    args, url = COMMANDS[command]
    env = {
        "AITRADER__DATA__DIR": str(store.root),
        "AITRADER__DATA__DOWNLOAD__BACKOFF_INITIAL": "0.01",
        "AITRADER__DATA__DOWNLOAD__BACKOFF_MAX": "0.02",
        "COLUMNS": "400",
    }
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, [*args, "--api-url", url.format(base=base), "--json"], env=env)
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and cause in output
    assert "run again" in output or "wrong --api-url" in output
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_no_network_is_said_when_there_is_no_route(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    routes.write_text("Iface\tDestination\tGateway\tFlags\nlo\t0000007F\t00000000\t0001\n")
    assert has_default_route(routes) is False
    routes.write_text("Iface\tDestination\tGateway\tFlags\neth0\t00000000\t010200C0\t0003\n")
    assert has_default_route(routes) is True
    assert has_default_route(tmp_path / "missing") is None
