"""``aitrader backtest DATASET...``: any strategy through the risk manager, with costs,
benchmarks, stress scenarios and a report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer
from rich.markup import escape

from aitrader.analytics.units import format_metric
from aitrader.cli.common import (
    JsonOption,
    TrustBundleOption,
    console,
    emit_json,
    err_console,
    table,
)
from aitrader.cli.strategy import (
    EndOption,
    ModelOption,
    ParamOption,
    RunConfigOption,
    StartOption,
    StopOption,
    StrategyChoice,
    StrategyOption,
    TargetOption,
    choice,
    run_inputs,
    run_settings,
    warn_in_sample,
)
from aitrader.config import Settings
from aitrader.engine.config import BrokerConfig
from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from aitrader.engine.managed import ManagedResult
    from aitrader.engine.result import BacktestResult
    from aitrader.strategy.run import RunSpec

SUMMARY_ROWS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "volatility")


def _calendar(given: str | None, default: str) -> str:
    """``--calendar`` if given; else the data set's own (equity for SPY and Yahoo data)."""
    if given is not None:
        if given not in ("crypto", "equity"):
            raise ConfigError(f"--calendar {given!r}: use crypto or equity")
        return given
    return default


def _stressed_config(config: BrokerConfig, spread_bps: float) -> BrokerConfig:
    """The broker with the scenario's spread (a widened spread is a cost: no longer zero-cost)."""
    if spread_bps == config.spread_bps:
        return config
    return BrokerConfig(**{**config.model_dump(), "spread_bps": spread_bps, "zero_cost": False})


def _run_scenarios(
    names: list[str],
    data: dict[str, pd.DataFrame],
    run: tuple[StrategyChoice, Settings, RunSpec],
    seed: int,
) -> dict[str, BacktestResult]:
    """One run per stress scenario on a stressed copy of the candles (strategy re-decided)."""
    from aitrader.analytics.scenarios import make_scenario
    from aitrader.strategy.run import backtest_strategy

    chosen, cfg, spec = run
    if names and len(data) != 1:
        raise ConfigError("--scenario runs on one data set at a time")
    out = {}
    for name in names:
        ((symbol, candles),) = data.items()
        scenario = make_scenario(name, candles, seed=seed)
        stressed = replace(
            spec,
            broker=_stressed_config(spec.broker, scenario.spread_bps(spec.broker.spread_bps)),
            options=replace(spec.options, benchmarks=False, name=f"{spec.options.name} [{name}]"),
        )
        result = backtest_strategy(chosen.build(), {symbol: scenario.candles}, cfg, stressed)
        out[name] = result.result
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


DatasetsArgument = typer.Argument(
    None,
    help="sample:NAME or EXCHANGE:SYMBOL:TIMEFRAME (several: one portfolio; "
    "default: run.data of the config).",
)
ScenarioOption = typer.Option(
    [], "--scenario", help="flash-crash, low-liquidity, gap or vol-spike (repeatable)."
)


@dataclass(frozen=True)
class _Output:
    """What ``backtest`` reports besides the run: stress scenarios, the HTML report, JSON."""

    scenarios: list[str]
    seed: int
    report: Path | None
    log_scale: bool
    zero_cost: bool
    as_json: bool


def backtest_command(
    ctx: typer.Context,
    datasets: list[str] | None = DatasetsArgument,
    strategy: str | None = StrategyOption,
    params: list[str] | None = ParamOption,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    start: str | None = StartOption,
    end: str | None = EndOption,
    fee: float | None = typer.Option(None, "--fee", help="Taker and maker fee, fraction."),
    slippage: float | None = typer.Option(None, "--slippage", help="Slippage, basis points."),
    stop_loss: float | None = StopOption,
    take_profit: float | None = TargetOption,
    per_bar: bool = typer.Option(False, "--per-bar", help="Decide with on_bar, not vectorized."),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here."),  # noqa: B008
    scenario: list[str] = ScenarioOption,
    seed: int = typer.Option(0, "--seed", help="Seed of the stress scenarios."),
    calendar: str | None = typer.Option(None, "--calendar", help="crypto or equity."),
    log_scale: bool = typer.Option(False, "--log-scale", help="Log-scale equity chart."),
    zero_cost: bool = typer.Option(False, "--zero-cost", help="Switch costs off (labelled)."),
    config: Path | None = RunConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Backtest a strategy through the risk manager, with costs, next to buy-and-hold and SMA.

    The same decision path as `aitrader paper --replay` (equal settings give equal results):
    the strategy's targets → risk manager → simulated fills at the next open with fees and
    slippage. Bars before --start warm the strategy up and are not traded.

    Example: aitrader backtest sample:BTC-USD-1h -s sma-cross -p fast=20
    """
    from aitrader.strategy.run import backtest_strategy, no_trades_reason

    cfg = with_costs(run_settings(ctx, config), fee, slippage)
    chosen = choice(cfg, strategy, params, model, (stop_loss, take_profit), trust_bundle)
    window = (start or cfg.run.start, end or cfg.run.end)
    data, spec = run_inputs(cfg, datasets or cfg.run.data, chosen, window)
    spec = _spec(spec, chosen, zero_cost, calendar, per_bar)
    strategy_ = chosen.build()
    spec = replace(spec, options=replace(spec.options, name=strategy_.name))
    managed = backtest_strategy(strategy_, data, cfg, spec)
    output = _Output(scenario, seed, report, log_scale, zero_cost, as_json)
    _finish(managed, data, (chosen, cfg, spec), output, no_trades_reason(strategy_, managed))


def _spec(
    spec: RunSpec, chosen: StrategyChoice, zero_cost: bool, calendar: str | None, per_bar: bool
) -> RunSpec:
    """The run as the command line sets it: costs, calendar, decision mode and brackets (the
    caller names it after the strategy built)."""
    broker = BrokerConfig.without_costs() if zero_cost else spec.broker
    options = replace(spec.options, calendar=_calendar(calendar, spec.options.calendar))
    return replace(
        spec, broker=broker, options=options, per_bar=per_bar,
        stop_loss=chosen.stop_loss, take_profit=chosen.take_profit,
    )  # fmt: skip


def _finish(
    managed: ManagedResult,
    data: dict[str, pd.DataFrame],
    run: tuple[StrategyChoice, Settings, RunSpec],
    output: _Output,
    idle: str | None = None,
) -> None:
    """Metrics, stress scenarios and the report of a finished backtest, printed or as JSON;
    ``idle``: why it made no trade (None: it traded)."""
    from aitrader.analytics.metrics import compute_metrics, json_safe
    from aitrader.analytics.report import write_report
    from aitrader.analytics.scenarios import compare_scenarios

    chosen, result = run[0], managed.result
    warn_in_sample(chosen, result.equity.index[0], result.equity.index[-1])
    metrics = compute_metrics(result)
    stressed = _run_scenarios(output.scenarios, data, run, output.seed)
    scenarios = compare_scenarios(result, stressed) if stressed else None
    report = output.report
    path = write_report(result, report, output.log_scale) if report is not None else None
    if path is not None and scenarios is not None:
        scenarios.to_csv(path.parent / "scenarios.csv")
    if output.zero_cost:
        err_console.print("[bold red]ZERO-COST RUN[/]: fees and slippage are off")
    actions = {str(k): int(v) for k, v in managed.actions.items()}
    if output.as_json:
        rows = None if scenarios is None else scenarios.reset_index().to_dict("records")
        payload = {"metrics": metrics, "risk": actions, "scenarios": rows, "report": path}
        payload["no_trades"] = idle
        emit_json(json_safe(payload | {"strategy": chosen.describe()}))
        return
    _print_summary(metrics, scenarios)
    if actions:
        err_console.print(_risk_line(managed.decisions, actions), highlight=False, soft_wrap=True)
    if idle is not None:
        err_console.print(f"[bold yellow]no trades[/]: {escape(idle)}", highlight=False)
    if path is not None:
        err_console.print(f"report: {path}")


def _risk_line(decisions: pd.DataFrame, actions: dict[str, int]) -> str:
    """What the risk manager did, with the most common reason of its rejections."""
    line = "risk manager: " + ", ".join(f"{v} {k}" for k, v in sorted(actions.items()))
    rejected = decisions.loc[decisions["action"] == "reject", "reason"]
    if len(rejected):
        line += f" (most rejections: {rejected.value_counts().index[0]})"
    return line


def with_costs(cfg: Settings, fee: float | None, slippage: float | None) -> Settings:
    """The settings with ``--fee`` / ``--slippage`` applied to the costs (validated)."""
    changes: dict[str, float] = {}
    if fee is not None:
        changes |= {"taker_fee": fee, "maker_fee": fee}
    if slippage is not None:
        changes["slippage_bps"] = slippage
    if not changes:
        return cfg
    from pydantic import ValidationError

    from aitrader.config import CostsConfig

    try:
        costs = CostsConfig(**{**cfg.costs.model_dump(), **changes})
    except ValidationError as exc:
        raise ConfigError(f"--fee/--slippage: {exc.errors()[0]['msg']}") from None
    return cfg.model_copy(update={"costs": costs})
