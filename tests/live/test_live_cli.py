"""``paper --replay`` end to end into a real SQLite ledger; ``live`` refuses and never trades."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.live import LIVE_UNAVAILABLE, live_command, paper_command
from aitrader.live.emulator import EmulatorConfig, ExchangeEmulator
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


def test_live_with_keys_and_confirmation_says_routing_is_unavailable(
    keyed: dict[str, str],
) -> None:
    with ExchangeEmulator(EmulatorConfig(api_key=KEY, secret=SECRET)) as emu:
        result = runner.invoke(app, [*LIVE, "--confirm-live"], env=keyed)
        assert result.exit_code == 2
        assert "not available in this version" in result.output
        assert LIVE_UNAVAILABLE.split(":")[0] in " ".join(result.output.split())
        assert emu.requests == []
        assert KEY not in result.output and SECRET not in result.output
