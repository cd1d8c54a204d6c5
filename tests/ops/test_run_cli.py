"""``aitrader run`` refuses, with one clear line and exit code 2, what it cannot start."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from aitrader.cli import app

runner = CliRunner()


def run_with(tmp: Path, values: dict[str, object], env: dict[str, str] | None = None) -> str:
    path = tmp / "bot.yaml"
    path.write_text(yaml.safe_dump({"bot": {"ledger": str(tmp / "bot.db")}, **values}))
    result = runner.invoke(app, ["run", "--config", str(path)], env=env)
    assert result.exit_code == 2, result.output
    assert not (tmp / "bot.db").exists()  # refused before anything was written
    return " ".join(result.output.split())


def test_run_needs_something_to_trade(tmp_path: Path) -> None:
    said = run_with(tmp_path, {})
    assert "the bot needs run.data (a replay) or run.exchange and run.symbols" in said


def test_live_needs_keys_and_a_confirmation(tmp_path: Path) -> None:
    market = {"run": {"exchange": "binance", "symbols": ["BTC/USDT"]}}
    live = {**market, "bot": {"ledger": str(tmp_path / "bot.db"), "mode": "live"}}
    assert "no API keys for binance" in run_with(tmp_path, live)
    keys = {
        "AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY": "key-0123456789",
        "AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET": "secret-0123456789",
    }
    said = run_with(tmp_path, live, keys)
    assert "places real orders on binance with real money: set bot.confirm_live" in said


def test_unknown_jobs_and_bad_cron_lines_are_named(tmp_path: Path) -> None:
    replay = {"run": {"data": ["sample:BTC-USD-1h"]}}
    said = run_with(tmp_path, {**replay, "schedule": {"jobs": {"retrian": {"cron": "* * * * *"}}}})
    assert "schedule.jobs" in said and "unknown jobs ['retrian']" in said
    bad = {**replay, "schedule": {"jobs": {"scan": {"cron": "61 * * * *"}}}}
    bad["bot"] = {"ledger": str(tmp_path / "bot.db"), "api": False, "runtime": False}
    assert "schedule cron '61 * * * *'" in run_with(tmp_path, bad)
