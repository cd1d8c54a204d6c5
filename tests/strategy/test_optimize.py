"""``aitrader optimize``: grid or TPE through the risk-managed backtest, every trial counted,
walk-forward blocks, DSR / PBO, a resumable study per strategy, data and timeframe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.samples import load_sample
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy import Param, Strategy
from aitrader.strategy.optimize import (
    fold_bounds,
    grid,
    search_space,
    study_name,
    walk_forward_returns,
)

runner = CliRunner()


class Threshold(Strategy):
    window = 1
    level = Param(0.0, choices=(0.0, 0.5, 1.0))


def test_search_space_and_grid() -> None:
    space = search_space(SmaCross, fixed=["slow", "stop_loss"])
    assert set(space) == {"fast", "short"}
    axes = grid(space, limit=500)
    assert axes is not None and axes["fast"][:3] == [2, 3, 4] and axes["short"] == [False, True]
    assert grid(space, limit=50) is None  # 99 × 2 points: too many for a grid of 50
    assert grid(search_space(SmaCross), limit=10_000) is None  # stop_loss is continuous
    assert grid(search_space(Threshold), 10) == {"level": [0.0, 0.5, 1.0]}


def test_walk_forward_uses_only_earlier_blocks() -> None:
    rng = np.random.default_rng(0)
    good_early = np.r_[rng.normal(0.01, 0.01, 100), rng.normal(-0.01, 0.01, 100)]
    good_late = np.r_[rng.normal(-0.01, 0.01, 100), rng.normal(0.01, 0.01, 100)]
    matrix = np.column_stack([good_early, good_late])
    bounds = fold_bounds(200, 2)
    out = walk_forward_returns(matrix, bounds)
    # block 2 is traded with the column best on block 1 (good_early), which then loses
    assert np.array_equal(out, good_early[100:]) and out.mean() < 0


def test_study_names_never_mix() -> None:
    a = study_name("sma-cross", ["sample:BTC-USD-1h"], "1h")
    assert a != study_name("sma-cross", ["sample:SPY-1d"], "1d")
    assert a != study_name("buy-and-hold", ["sample:BTC-USD-1h"], "1h")


@pytest.mark.slow
def test_optimize_cli_grid_resumes_and_writes_a_run_config(tmp_path: Path) -> None:
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    start = str(load_sample("BTC-USD-1h").index[-2500])
    out = tmp_path / "run.yaml"
    args = ["optimize", "sample:BTC-USD-1h", "-s", "sma-cross", "--start", start]
    args += ["-p", "slow=12", "-p", "short=false", "-p", "stop_loss=0.03", "-o", str(out)]
    first = runner.invoke(app, [*args, "--json"], env=env)
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["method"] == "grid" and result["trials"] == 10  # fast 2..11 < slow 12
    assert result["bars"] == 2500 and len(result["fold_sharpes"]) == 4
    assert 0 <= result["dsr"] <= 1 and 0 <= result["pbo"] <= 1
    assert 2 <= result["best_params"]["fast"] <= 11
    written = yaml.safe_load(out.read_text())["run"]
    assert written["strategy"] == "sma-cross" and written["params"]["slow"] == 12
    again = json.loads(runner.invoke(app, [*args, "--json"], env=env).stdout)
    assert again["trials"] == 10 and again["best_params"] == result["best_params"]
    rerun = runner.invoke(app, ["--config", str(out), "backtest", "--start", start, "--json"])
    assert rerun.exit_code == 0, rerun.output
