"""``aitrader control``: a run's state and its pause / resume / kill flags, through the ledger."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.live.ledger import KILL, PAUSE, Ledger

runner = CliRunner()


def test_status_pause_resume_kill_on_a_paper_ledger(tmp_path: Path) -> None:
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    path = tmp_path / "paper.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "300", "--ledger", str(path)]
    assert runner.invoke(app, args, env=env).exit_code == 0
    result = runner.invoke(app, ["control", "status", "--ledger", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["bars"] == 300 and not status["paused"] and not status["kill"]
    assert status["equity"] > 0 and status["events"]
    ledger_args = ["--ledger", str(path), "--reason", "maintenance"]
    assert runner.invoke(app, ["control", "pause", *ledger_args], env=env).exit_code == 0
    with Ledger(path) as ledger:
        flag = ledger.get_flag(PAUSE)
        assert flag.on and flag.reason == "maintenance"
    result = runner.invoke(app, ["control", "status", "--ledger", str(path), "--json"], env=env)
    assert json.loads(result.stdout)["pause_reason"] == "maintenance"
    assert runner.invoke(app, ["control", "resume", "--ledger", str(path)], env=env).exit_code == 0
    assert runner.invoke(app, ["control", "kill", "--ledger", str(path)], env=env).exit_code == 0
    with Ledger(path) as ledger:
        assert not ledger.get_flag(PAUSE).on and ledger.get_flag(KILL).on
    table = runner.invoke(app, ["control", "status", "--ledger", str(path)], env=env)
    assert table.exit_code == 0 and "flag kill on" in table.stdout


def test_a_missing_ledger_is_a_usage_error_and_no_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    result = runner.invoke(app, ["control", "pause", "--ledger", str(path)])
    assert result.exit_code == 2 and "no such ledger file" in result.output
    assert not path.exists()
