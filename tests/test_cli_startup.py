"""Start-up: a command imports only what it needs; lazy commands keep their help text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from aitrader.cli import COMMANDS, app
from aitrader.cli.helptext import reflow
from aitrader.cli.lazy import load_command, source_help

HEAVY = (
    "ccxt",
    "arch",
    "lightgbm",
    "xgboost",
    "sklearn",
    "plotly",
    "matplotlib",
    "scipy",
    "numba",
    "optuna",
    "mlflow",
    "sqlalchemy",
    "torch",
    "transformers",
)

PROBE = """
import json, sys
sys.argv = ["aitrader", *sys.argv[1:]]
from aitrader.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "modules": loaded}), file=sys.stderr)
"""


def _imported(*args: str) -> tuple[int, set[str], str]:
    """Run ``aitrader ARGS`` in a fresh interpreter: exit code, top-level modules, stdout."""
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


def test_help_imports_no_command_module_nor_heavy_library() -> None:
    code, modules, out = _imported("--help")
    assert code == 0
    assert "backtest" in out and "Market data: samples" in out
    assert modules.isdisjoint({*HEAVY, "pandas"}), modules & {*HEAVY, "pandas"}


def test_data_samples_imports_no_heavy_library() -> None:
    code, modules, out = _imported("data", "samples", "--json")
    assert code == 0
    assert "sample:BTC-USD-1h" in out
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_lazy_summary_is_the_commands_own_help(name: str) -> None:
    """The root listing (read from the source) shows exactly what the command's help says."""
    command = load_command(name, COMMANDS[name], app)
    assert reflow(source_help(COMMANDS[name]) or "") == command.help


def test_root_help_lists_every_command_with_its_summary() -> None:
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for name, spec in COMMANDS.items():
        summary = (source_help(spec) or "").split("\n\n")[0].replace("\n", " ")
        assert f"{name} " in out and summary[:60] in out, name


def test_lazy_group_inside_a_group_runs_its_command() -> None:
    out = CliRunner().invoke(app, ["data", "download", "--help"], env={"COLUMNS": "120"}).output
    assert "Usage: aitrader data download" in out and "--exchange" in out


def test_a_mistyped_command_suggests_a_lazy_one() -> None:
    result = CliRunner().invoke(app, ["dat"], env={"COLUMNS": "120"})
    assert result.exit_code == 2
    assert "No such command 'dat'. Did you mean 'data'?" in result.output
