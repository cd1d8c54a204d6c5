"""``aitrader optimize``: search a strategy's parameters over walk-forward blocks, honestly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aitrader.cli.common import (
    JsonOption,
    TrustBundleOption,
    console,
    emit_json,
    err_console,
    progress,
    table,
)
from aitrader.cli.strategy import (
    EndOption,
    ModelOption,
    ParamOption,
    RunConfigOption,
    StartOption,
    StrategyOption,
    choice,
    run_inputs,
    run_settings,
)
from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.strategy.optimize import OptimizeConfig, OptimizeResult
    from aitrader.strategy.run import Candles, RunSpec

DatasetsArgument = typer.Argument(
    None, help="sample:NAME or EXCHANGE:SYMBOL:TIMEFRAME (default: run.data)."
)
OutputOption = typer.Option(
    None, "--output", "-o", help="Write the chosen parameters as a run: config here."
)


def optimize_command(
    ctx: typer.Context,
    datasets: list[str] | None = DatasetsArgument,
    strategy: str | None = StrategyOption,
    params: list[str] | None = ParamOption,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    start: str | None = StartOption,
    end: str | None = EndOption,
    trials: int = typer.Option(50, "--trials", help="TPE trials (a small grid runs whole)."),
    folds: int = typer.Option(4, "--folds", help="Walk-forward blocks of the objective."),
    max_grid: int = typer.Option(200, "--max-grid", help="Largest space searched as a grid."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed."),
    output: Path | None = OutputOption,
    config: Path | None = RunConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Search a strategy's declared parameter ranges (grid or Optuna TPE) through the
    risk-managed backtest, scoring the mean Sharpe of walk-forward blocks; report the trial
    count with the deflated Sharpe ratio, PBO and a walk-forward estimate.

    Fixed parameters (--param) are not searched. The study is named after strategy, data and
    timeframe: rerunning resumes it, and every trial ever run counts in the DSR.

    Example: aitrader optimize sample:BTC-USD-1h -s sma-cross -o run.yaml
    """
    from aitrader.strategy.optimize import OptimizeConfig, study_name

    cfg = run_settings(ctx, config)
    chosen = choice(cfg, strategy, params, model, trust=trust_bundle)
    names = datasets or cfg.run.data
    window = (start or cfg.run.start, end or cfg.run.end)
    data, spec = run_inputs(cfg, names, chosen, window)
    spec = replace(spec, options=replace(spec.options, benchmarks=False))
    cls, fixed = _fixed(chosen)
    timeframe = spec.options.timeframe or "?"
    name = study_name(chosen.name, list(names or []), timeframe)
    settings = OptimizeConfig(trials, folds, max_grid, seed, cfg.data.dir, fixed)
    result = _search(cls, chosen.name, (data, cfg, spec), name, settings)
    best = {**fixed, **result.best_params}
    if output is not None:
        _write_run(output, chosen.name, best, list(names or []))
    payload = {**result.__dict__, "best_params": best, "output": str(output) if output else None}
    if as_json:
        emit_json(payload)
        return
    _print(payload)


def _search(
    cls: Any,
    label: str,
    run: tuple[Candles, Settings, RunSpec],
    name: str,
    settings: OptimizeConfig,
) -> OptimizeResult:
    """Run the study ``name`` of the strategy class ``cls`` with a progress bar of its trials
    (``label``: the strategy as chosen)."""
    from aitrader.strategy.optimize import optimize

    with progress() as bar:
        task = bar.add_task(f"optimize {label}", total=None)
        return optimize(
            cls, run, name, settings, lambda k, n: bar.update(task, completed=k, total=n)
        )


def _fixed(chosen: Any) -> tuple[Any, dict[str, Any]]:
    """The strategy class, and the parameters given on the command line (not searched)."""
    from aitrader.strategy.registry import parse_params, strategy_class

    cls = strategy_class(chosen.name)
    given = parse_params(list(chosen.params))
    declared = cls.parameters()
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ConfigError(f"--param {', '.join(unknown)}: not a parameter of {cls.name}")
    return cls, {k: declared[k].coerce(v, cls.name) for k, v in given.items()}


def _write_run(path: Path, strategy: str, params: dict[str, Any], data: list[str]) -> None:
    import yaml

    text = yaml.safe_dump({"run": {"strategy": strategy, "params": params, "data": data}})
    path.write_text("# written by aitrader optimize\n" + text)
    err_console.print(f"wrote {path} (use: aitrader backtest --config {path})", highlight=False)


def _print(p: dict[str, Any]) -> None:
    rows = [
        ["study", p["study"]],
        ["search", f"{p['method']}, {p['trials']} trials evaluated (all count)"],
        ["best parameters", ", ".join(f"{k}={v}" for k, v in p["best_params"].items())],
        ["mean block Sharpe (per bar)", f"{p['best_score']:.4f}"],
        ["block Sharpes", ", ".join(f"{v:.4f}" for v in p["fold_sharpes"])],
        ["deflated Sharpe ratio", f"{p['dsr']:.3f}"],
        ["PBO (CSCV)", f"{p['pbo']:.1%}"],
        ["walk-forward Sharpe (per bar)", f"{p['walk_forward_sharpe']:.4f}"],
    ]
    console.print(table("Optimize", ["", "value"], rows))
    if p["dsr"] < 0.95:
        console.print(
            "The best set is not significant after the search (DSR < 0.95): treat it as noise.",
            highlight=False,
        )
