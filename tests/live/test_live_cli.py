"""``paper`` end to end into a real SQLite ledger (stored and live bars); ``live`` refuses
without keys or ``--confirm-live`` and then never trades."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.live import live_command, paper_command
from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.live.ledger import Ledger

app = typer.Typer()
app.command("paper")(paper_command)
app.command("live")(live_command)
runner = CliRunner()
LIVE = ["live", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m"]
KEY, SECRET = "emulator-key-0123456789", "emulator-secret-9876543210"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store")}


@pytest.fixture
def keyed(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY": KEY,
        "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": SECRET,
    }


def test_paper_replay_writes_a_ledger(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "paper.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--speed", "0", "--bars", "800"]
    result = runner.invoke(app, [*args, "--ledger", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bars"] == 800 and summary["ledger"] == str(path)
    assert summary["fills"] > 0 and summary["orders"] >= summary["fills"] // 2
    with Ledger(path) as ledger:
        assert len(ledger.fills()) == summary["fills"]
        assert len(ledger.orders()) == summary["orders"]
        curve = ledger.equity_curve()
        assert len(curve) == 800 and curve["equity"].iloc[-1] == summary["equity"]
        assert [e.message for e in ledger.events("runner")] == ["start", "stop"]


def test_paper_table_output(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "table.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "300", "--ledger", str(path)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "final equity" in result.stdout and f"ledger: {path}" in result.stdout


def _order_requests(emu: ExchangeEmulator) -> list[tuple[str, str]]:
    return [r for r in emu.requests if "order" in r[1].lower()]


def test_live_without_confirm_places_no_order(keyed: dict[str, str]) -> None:
    with ExchangeEmulator(EmulatorConfig(api_key=KEY, secret=SECRET)) as emu:
        result = runner.invoke(app, LIVE, env=keyed)
        assert result.exit_code == 2
        assert "--confirm-live" in result.output
        assert _order_requests(emu) == [] and emu.requests == []
        assert KEY not in result.output and SECRET not in result.output


def test_live_without_keys_is_refused(env: dict[str, str]) -> None:
    result = runner.invoke(app, [*LIVE, "--confirm-live"], env=env)
    assert result.exit_code == 2
    assert "no API keys for binance" in result.output


def test_paper_on_live_exchange_bars_uses_public_data_only(
    tmp_path: Path, keyed: dict[str, str]
) -> None:
    """``paper --exchange``: the emulator's closed bars, simulated fills, no signed request."""
    with ExchangeEmulator(EmulatorConfig(api_key=KEY, secret=SECRET)) as emu:
        stop = threading.Event()

        def clock() -> None:
            while not stop.wait(0.1):
                emu.advance()

        ticking = threading.Thread(target=clock, daemon=True)
        ticking.start()
        path = tmp_path / "paper-live.db"
        args = ["paper", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
        args += ["--api-url", emu.url, "--feed", "rest", "--max-bars", "5", "--poll", "0.05"]
        args += ["-p", "fast=2"]
        args += ["-p", "slow=4", "--ledger", str(path), "--json"]
        try:
            result = runner.invoke(app, args, env=keyed)
        finally:
            stop.set()
            ticking.join(5)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["bars"] == 5
        assert not [r for r in emu.requests if r[1].startswith(("/api/v3/order", "/api/v3/acc"))]
        with Ledger(path) as ledger:
            times = ledger.equity_curve().index
            assert len(times) == 5 and (times.to_series().diff().dropna() == "1h").all()
