"""``backtest`` command end to end on bundled data, through a Typer app of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.backtest import backtest_command
from aitrader.errors import ConfigError

app = typer.Typer()
app.command("backtest")(backtest_command)
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store")}


def test_json_report_and_scenarios(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "report"
    args = ["sample:SPY-1d", "--report", str(out), "--json", "--log-scale"]
    args += ["--scenario", "flash-crash", "--scenario", "low-liquidity"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    metrics = payload["metrics"]
    assert metrics["calendar"] == "equity" and metrics["bars_per_year"] == 252
    assert metrics["zero_cost"] is False and metrics["fees_paid"] > 0
    assert set(metrics["benchmarks"]) == {"buy_and_hold", "sma_crossover"}
    assert [row["scenario"] for row in payload["scenarios"]] == [
        "base",
        "flash-crash",
        "low-liquidity",
    ]
    for name in ("report.html", "metrics.json", "trades.csv", "equity.csv", "scenarios.csv"):
        assert (out / name).is_file(), name
    assert "ZERO-COST RUN" not in (out / "report.html").read_text()


def test_zero_cost_is_explicit_and_labelled(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "free"
    result = runner.invoke(
        app, ["sample:SPY-1d", "--zero-cost", "--report", str(out), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["fees_paid"] == 0
    assert "ZERO-COST RUN" in (out / "report.html").read_text()


def test_table_output(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["sample:SPY-1d", "-p", "fast=20", "-p", "slow=50"], env=env)
    assert result.exit_code == 0, result.output
    assert "Backtest sma-cross" in result.stdout and "buy_and_hold" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "%" in rows["max_drawdown"] and "%" in rows["total_return"]
    assert re.fullmatch(r"fees_paid +[\d,]+\.\d\d", rows["fees_paid"].strip())  # money, not 1.6e+03


@pytest.mark.parametrize(
    "args",
    [["--scenario", "meteor"], ["--strategy", "magic"], ["--calendar", "lunar"]],
)
def test_bad_options_are_config_errors(args: list[str], env: dict[str, str]) -> None:
    result = runner.invoke(app, ["sample:SPY-1d", *args], env=env)
    assert isinstance(result.exception, ConfigError)
