"""A new user's first hour: --json on init and control, risk status on a fresh config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.live.ledger import KILL, PAUSE, Ledger

runner = CliRunner()


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory with no config file and no AITRADER variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AITRADER_CONFIG", raising=False)
    return tmp_path


def test_init_json(fresh: Path) -> None:
    result = runner.invoke(app, ["init", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"wrote": "aitrader.yaml"}
    assert (fresh / "aitrader.yaml").read_text().startswith("#")
    again = runner.invoke(app, ["init", "--json"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_risk_status_works_on_a_fresh_config(fresh: Path) -> None:
    result = runner.invoke(app, ["risk", "status"])
    assert result.exit_code == 0, result.output
    assert "in memory only" in " ".join(result.output.split())
    payload = json.loads(runner.invoke(app, ["risk", "status", "--json"]).stdout)
    assert payload["path"] is None and payload["exists"] is False
    assert payload["kill_switch"] is False and "risk.state_path" in payload["message"]
    reset = runner.invoke(app, ["risk", "reset"])
    assert reset.exit_code == 2 and "nothing to reset" in reset.output


def test_control_flags_json(fresh: Path) -> None:
    path = fresh / "run.db"
    with Ledger(path):
        pass
    for command, flag, on in (
        ("pause", PAUSE, True),
        ("resume", PAUSE, False),
        ("kill", KILL, True),
    ):
        result = runner.invoke(app, ["control", command, "--ledger", str(path), "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert (payload["flag"], payload["on"]) == (flag, on)
    with Ledger(path) as ledger:
        assert ledger.get_flag(KILL).on and not ledger.get_flag(PAUSE).on
