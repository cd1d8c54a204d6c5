"""``aitrader backtest DATASET``: a strategy with costs, benchmarks, stress scenarios, report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from aitrader.analytics.units import format_metric
from aitrader.cli.common import JsonOption, console, emit_json, err_console, settings, table
from aitrader.data.datasets import Dataset, load_dataset
from aitrader.data.store import Store
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.result import BacktestResult
from aitrader.errors import ConfigError

STRATEGIES = ("sma-cross",)
SUMMARY_ROWS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "volatility")


def _calendar(dataset: Dataset, given: str | None) -> str:
    """``--calendar`` if given; else the data set's own (equity for SPY and Yahoo data)."""
    if given is not None:
        if given not in ("crypto", "equity"):
            raise ConfigError(f"--calendar {given!r}: use crypto or equity")
        return given
    return dataset.calendar


def _targets(strategy: str, candles: pd.DataFrame, fast: int, slow: int) -> np.ndarray:
    """Target position fractions of the chosen strategy on these candles."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: available: {', '.join(STRATEGIES)}")
    return sma_crossover_targets(candles["close"].to_numpy(np.float64), fast, slow)


def _stressed_config(config: BrokerConfig, spread_bps: float) -> BrokerConfig:
    """The broker with the scenario's spread (a widened spread is a cost: no longer zero-cost)."""
    if spread_bps == config.spread_bps:
        return config
    return BrokerConfig(**{**config.model_dump(), "spread_bps": spread_bps, "zero_cost": False})


def _run_scenarios(
    names: list[str],
    candles: pd.DataFrame,
    run: tuple[str, int, int, BrokerConfig, RunOptions],
    seed: int,
) -> dict[str, BacktestResult]:
    """One run per stress scenario on a stressed copy of the candles (strategy re-decided)."""
    from aitrader.analytics.scenarios import make_scenario

    strategy, fast, slow, config, options = run
    out = {}
    for name in names:
        scenario = make_scenario(name, candles, seed=seed)
        out[name] = run_backtest(
            scenario.candles,
            _targets(strategy, scenario.candles, fast, slow),
            _stressed_config(config, scenario.spread_bps(config.spread_bps)),
            replace(options, benchmarks=False, name=f"{options.name} [{name}]"),
        )
    return out


def _print_summary(metrics: dict[str, Any], scenarios: pd.DataFrame | None) -> None:
    """Strategy next to its benchmarks, then the scenario table."""
    benchmarks = metrics["benchmarks"]
    columns = ["metric", metrics["name"], *benchmarks]
    rows = [[key, metrics[key], *(b.get(key) for b in benchmarks.values())] for key in SUMMARY_ROWS]
    rows += [[key, metrics[key]] for key in ("trades", "win_rate", "fees_paid", "slippage_paid")]
    fmt = [[r[0], *(format_metric(r[0], v) for v in r[1:])] for r in rows]
    console.print(table(f"Backtest {metrics['name']} ({metrics['timeframe']})", columns, fmt))
    if scenarios is not None:
        cells = scenarios.T
        rows = [
            [key, *(format_metric(str(key), v) for v in values)]
            for key, values in zip(cells.index, cells.to_numpy(), strict=True)
        ]
        console.print(table("Stress scenarios", ["", *scenarios.index], rows))


def backtest_command(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="sample:NAME or EXCHANGE:SYMBOL:TIMEFRAME"),
    strategy: str = typer.Option("sma-cross", "--strategy", help="Strategy: sma-cross."),
    fast: int = typer.Option(10, "--fast", help="Fast SMA window (bars)."),
    slow: int = typer.Option(30, "--slow", help="Slow SMA window (bars)."),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here."),  # noqa: B008
    scenario: list[str] = typer.Option(  # noqa: B008
        [], "--scenario", help="flash-crash, low-liquidity, gap or vol-spike (repeatable)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the stress scenarios."),
    calendar: str | None = typer.Option(None, "--calendar", help="crypto or equity."),
    log_scale: bool = typer.Option(False, "--log-scale", help="Log-scale equity chart."),
    zero_cost: bool = typer.Option(False, "--zero-cost", help="Switch costs off (labelled)."),
    as_json: bool = JsonOption,
) -> None:
    """Backtest a strategy with realistic costs next to buy-and-hold and SMA baselines.

    Example: aitrader backtest sample:BTC-USD-1h --report out/ --scenario flash-crash
    """
    from aitrader.analytics.metrics import compute_metrics, json_safe
    from aitrader.analytics.report import write_report
    from aitrader.analytics.scenarios import compare_scenarios

    cfg = settings(ctx)
    loaded = load_dataset(dataset, Store(cfg.data.dir))
    candles, timeframe = loaded.candles, loaded.timeframe
    config = BrokerConfig.without_costs() if zero_cost else BrokerConfig.from_costs(cfg.costs)
    options = RunOptions(
        timeframe=timeframe, calendar=_calendar(loaded, calendar), name=f"{strategy} {fast}/{slow}"
    )
    targets = _targets(strategy, candles, fast, slow)
    result = run_backtest({loaded.symbol: candles}, targets, config, options)
    metrics = compute_metrics(result)
    stressed = _run_scenarios(scenario, candles, (strategy, fast, slow, config, options), seed)
    scenarios = compare_scenarios(result, stressed) if stressed else None
    path = write_report(result, report, log_scale) if report is not None else None
    if path is not None and scenarios is not None:
        scenarios.to_csv(path.parent / "scenarios.csv")
    if zero_cost:
        err_console.print("[bold red]ZERO-COST RUN[/]: fees and slippage are off")
    if as_json:
        rows = None if scenarios is None else scenarios.reset_index().to_dict("records")
        emit_json(json_safe({"metrics": metrics, "scenarios": rows, "report": path}))
        return
    _print_summary(metrics, scenarios)
    if path is not None:
        err_console.print(f"report: {path}")
