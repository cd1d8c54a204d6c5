"""A new user's path from the README: write a strategy, backtest it, check it, paper-trade it;
the backtest and the paper replay of the same settings agree to the cent — the trade-plan
strategy's TP1 partial exits, break-even and trailing stops included."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.samples import load_sample
from aitrader.live.ledger import Ledger

BARS = 1500
runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path  # type: ignore[misc]
    os.chdir(cwd)


def invoke(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, list(args), env={"AITRADER__DATA__DIR": "store"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else {"output": result.output}


def replay_start() -> str:
    return str(load_sample("BTC-USD-1h").index[-BARS])


def backtest_equity(*args: str) -> float:
    payload = invoke("backtest", "sample:BTC-USD-1h", "--start", replay_start(), *args, "--json")
    return float(payload["metrics"]["final_equity"])


def paper_equity(ledger: Path, *args: str) -> tuple[float, int]:
    payload = invoke(
        "paper", "--replay", "sample:BTC-USD-1h", "--bars", str(BARS), "--speed", "0",
        "--ledger", str(ledger), *args, "--json",
    )  # fmt: skip
    return float(payload["equity"]), int(payload["fills"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [(), ("-s", "sma-cross", "-p", "fast=5", "-p", "short=true", "--take-profit", "0.04")]
)
def test_backtest_equals_paper_replay_to_the_cent(workdir: Path, args: tuple[str, ...]) -> None:
    backtest = backtest_equity(*args)
    paper, fills = paper_equity(workdir / "paper.db", *args)
    assert fills > 10
    assert round(backtest, 2) == round(paper, 2)
    assert backtest == pytest.approx(paper, rel=1e-12)


@pytest.mark.slow
def test_a_new_users_strategy_from_template_to_paper(workdir: Path) -> None:
    invoke("strategy", "new", "mine")
    assert (workdir / "mine.py").is_file()
    spec = "./mine.py:Mine"
    out = invoke("backtest", "--strategy", spec, "sample:BTC-USD-1h", "--report", "out/")
    assert (workdir / "out" / "report.html").is_file() and "Backtest mine" in out["output"]
    check = invoke("strategy", "check", spec, "sample:BTC-USD-1h", "--json")
    assert check["equal"] is True and check["decisions"] > 100
    backtest = backtest_equity("--strategy", spec)
    paper, fills = paper_equity(workdir / "mine.db", "--strategy", spec)
    assert fills > 0 and round(backtest, 2) == round(paper, 2)
    with Ledger(workdir / "mine.db") as ledger:
        assert len(ledger.equity_curve()) == BARS


def test_strategy_cli_errors_are_one_line(workdir: Path) -> None:
    result = runner.invoke(app, ["backtest", "sample:BTC-USD-1h", "-s", "nope"])
    assert result.exit_code == 2 and "unknown strategy 'nope'" in result.output
    result = runner.invoke(app, ["backtest", "sample:BTC-USD-1h", "-p", "fast=50"])
    assert result.exit_code == 2 and "fast (50) must be below slow (30)" in result.output
    result = runner.invoke(app, ["strategy", "new", "../evil"])
    assert result.exit_code == 2 and "strategy name" in result.output
    listed = runner.invoke(app, ["strategy", "list", "--json"])
    assert {"sma-cross", "buy-and-hold", "model"} <= set(json.loads(listed.stdout))


@pytest.mark.slow
def test_one_run_config_is_the_same_run_in_backtest_and_paper(workdir: Path) -> None:
    config = workdir / "run.yaml"
    run = {
        **{"strategy": "sma-cross", "params": {"fast": 8, "slow": 40}},
        **{"data": ["sample:BTC-USD-1h"], "start": replay_start(), "take_profit": 0.05},
    }
    config.write_text(yaml.safe_dump({"run": run}))
    backtest = invoke("backtest", "--config", str(config), "--json")
    assert backtest["strategy"]["params"] == {"fast": 8, "slow": 40, "short": False,
                                               "stop_loss": 0.03}  # fmt: skip
    assert backtest["strategy"]["take_profit"] == 0.05
    paper = invoke("paper", "--config", str(config), "--speed", "0", "--ledger", "r.db", "--json")
    assert paper["bars"] == BARS and paper["fills"] > 10
    assert round(backtest["metrics"]["final_equity"], 2) == round(paper["equity"], 2)
    # an option on the command line overrides the file
    other = invoke("backtest", "--config", str(config), "-p", "fast=5", "--json")
    assert other["strategy"]["params"]["fast"] == 5


def write_config(workdir: Path) -> Path:
    """A run of the trade-plan strategy whose EV gate lets the baseline signal trade."""
    start = replay_start()
    config = {
        "run": {"strategy": "trade-plan", "data": ["sample:BTC-USD-1h"], "start": start},
        "signals": {"min_ev": -0.01},
        "plans": {"min_tp1_net": 0.0, "max_hold_bars": 48},
    }
    path = workdir / "plan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_trade_plan_backtest_equals_paper_replay_to_the_cent(workdir: Path) -> None:
    config = write_config(workdir)
    backtest = invoke("backtest", "--config", str(config), "--json")
    paper = invoke("paper", "--config", str(config), "--speed", "0", "--ledger", "p.db", "--json")
    assert paper["bars"] == BARS
    assert round(backtest["metrics"]["final_equity"], 2) == round(paper["equity"], 2)
    assert backtest["metrics"]["final_equity"] == pytest.approx(paper["equity"], rel=1e-12)
    with Ledger(workdir / "p.db") as ledger:
        reasons = ledger.fills()["reason"].value_counts().to_dict()
    # entries, TP1 partials and stops (initial, break-even or trailed) all happened
    assert reasons.get("take_profit", 0) >= 3 and reasons.get("stop_loss", 0) >= 3
    assert reasons.get("signal", 0) >= 3
    check = invoke("strategy", "check", "trade-plan", "--config", str(config), "--json")
    assert check["equal"] is True and check["decisions"] >= 10  # one per fresh signal
    assert check["equity_per_bar"] == check["equity_vectorized"]
