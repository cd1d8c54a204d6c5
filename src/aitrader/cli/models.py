"""``aitrader train | evaluate | tune``: honest walk-forward evaluation, bundles, Optuna tuning.

Each command gathers the typed config sections (``features``, ``labels``, ``costs``,
``models``, ``validation``, ``tuning``, ``tracking``), applies the command-line overrides, calls
the pipeline layer (:mod:`aitrader.validation.experiment`, :mod:`aitrader.validation.tuning`),
which records the run in MLflow, and prints a summary table or ``--json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel, ValidationError

from aitrader.cli import model_store
from aitrader.cli.common import JsonOption, console, emit_json, progress, settings, table
from aitrader.config import Settings, format_validation_error
from aitrader.errors import ConfigError, DataError
from aitrader.models import kinds
from aitrader.validation.experiment import ExperimentConfig, Source

if TYPE_CHECKING:
    from aitrader.models.registry import ModelBundle
    from aitrader.strategy.signals import SymbolThresholds

DatasetArgument = typer.Argument(..., help="sample:NAME, EXCHANGE:SYMBOL:TIMEFRAME or a file")
ModelOption = typer.Option(
    None,
    "--model-kind",
    "--model",
    "-k",
    help=f"Model kind to fit: {', '.join(kinds.names())} (default: config; `aitrader models "
    "kinds`). Here --model is the same; backtest, paper and live take --model DIR, a trained "
    "bundle.",
)
NoTrackOption = typer.Option(False, "--no-track", help="Do not record the run in MLflow.")


def _source(cfg: Settings, dataset: str) -> Source:
    from aitrader.data.datasets import load_dataset
    from aitrader.data.store import Store

    loaded = load_dataset(dataset, Store(cfg.data.dir))
    return Source(loaded.name, loaded.candles, loaded.timeframe, loaded.symbol, loaded.calendar)


def _override(section: BaseModel, origin: str, **changes: Any) -> Any:
    """``section`` with ``changes`` applied and validated (ConfigError naming the key)."""
    values = section.model_dump(exclude_unset=True) | changes
    try:
        return type(section).model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def _experiment(
    cfg: Settings, model: str | None, no_track: bool, **tuning: Any
) -> ExperimentConfig:
    """Config sections from the settings with the command-line overrides applied."""
    base = ExperimentConfig.from_settings(cfg)
    updates: dict[str, Any] = {}
    if model is not None:
        if model not in kinds.names() and Path(model).is_dir():
            raise ConfigError(
                f"--model-kind: {model} is a directory (a trained bundle?); this command fits a "
                f"new model of a kind ({', '.join(kinds.names())}). Trade a bundle with "
                f"`aitrader backtest --strategy model --model {model} DATASET`."
            )
        updates["models"] = _override(base.models, "--model-kind", kind=model)
    if no_track:
        updates["tracking"] = _override(base.tracking, "--no-track", enabled=False)
    changes = {k: v for k, v in tuning.items() if v is not None}
    if changes:
        updates["tuning"] = _override(base.tuning, "tune options", **changes)
    return ExperimentConfig(**(dict(base) | updates))  # validated: adds the kind's features


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _print(title: str, values: dict[str, Any]) -> None:
    console.print(table(title, ["metric", "value"], ([k, _fmt(v)] for k, v in values.items())))


def evaluate_command(
    ctx: typer.Context,
    dataset: str = DatasetArgument,
    model: str = ModelOption,
    audit: bool = typer.Option(
        True, "--audit/--no-audit", help="Check every feature for look-ahead first."
    ),
    no_track: bool = NoTrackOption,
    as_json: bool = JsonOption,
) -> None:
    """Out-of-sample evaluation: metrics, net-of-cost P&L, DSR and PBO, recorded in MLflow.

    Walk-forward, purged k-fold or CPCV (``validation.scheme``), calibrated and the decision
    tuned after each training window; the out-of-sample targets trade through the risk-managed
    engine with costs and the ATR stop. A look-ahead audit of the features runs first.

    Example: aitrader evaluate sample:BTC-USD-1h --model-kind logistic
    """
    from aitrader.validation.experiment import run_evaluate
    from aitrader.validation.leakage import audit_features

    cfg = settings(ctx)
    config = _experiment(cfg, model, no_track)
    source = _source(cfg, dataset)
    if audit:
        violations = audit_features(source.candles, config.features, timeframe=source.timeframe)
        if violations:
            listed = "\n  ".join(map(str, violations[:10]))
            raise DataError(f"look-ahead in the feature set; refusing to evaluate:\n  {listed}")
    with progress(transient=True) as bar:
        task = bar.add_task(f"walk-forward {config.models.kind}", total=None)
        evaluation, stats, run_id = run_evaluate(
            source,
            config,
            cfg.data.dir,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    from aitrader.validation.evaluation import market_note

    summary: dict[str, Any] = {"dataset": source.name, "model": config.models.kind}
    summary |= {"run_id": run_id} | evaluation.metrics | stats
    note = market_note(evaluation)
    if as_json:
        folds = evaluation.folds.to_dict(orient="records")
        emit_json(summary | {"note": note, "folds": folds})
        return
    _print(f"Out-of-sample evaluation: {source.name}", summary)
    if note is not None:
        console.print(f"[bold yellow]note[/]: {note}")


def train_command(
    ctx: typer.Context,
    dataset: str = DatasetArgument,
    model: str = ModelOption,
    output: Path = typer.Option(  # noqa: B008
        None, "--output", "-o", help="Bundle directory (default: <data dir>/models/KIND-HASH)."
    ),
    no_track: bool = NoTrackOption,
    as_json: bool = JsonOption,
) -> None:
    """Train a deployable model bundle and save it with its feature-spec hash.

    The model is fitted on the whole data set except its last slice, which calibrates it and
    tunes the decision for the data set's symbol:timeframe (the EV margin and sides with the
    best net P&L there, on at least signals.min_trades trades). A bundle that would never trade
    says so, with the reason and what to change.

    Example: aitrader train sample:BTC-USD-1h -o models/btc
    """
    cfg = settings(ctx)
    config = _experiment(cfg, model, no_track)
    source = _source(cfg, dataset)
    bundle, path, run_id = _train(source, config, cfg.data.dir, output)
    info = bundle.info
    tuned = info.thresholds()
    summary = {
        "dataset": source.name,
        "model": config.models.kind,
        "bundle": str(path),
        "feature_spec_hash": info.feature_spec_hash,
        "label": info.label_name,
        "train_window": " → ".join(info.train_window),
        "calibration_window": " → ".join(info.calibration_window),
        "run_id": run_id,
    }
    if as_json:
        decision = None if tuned is None else tuned.describe()
        will = None if tuned is None else tuned.reached
        emit_json(
            summary
            | {"signal_thresholds": info.signal_thresholds}
            | {"will_trade": will, "decision": decision}
        )
        return
    _print(f"Trained {config.models.kind}", summary)
    _print_decision(tuned)


def _train(
    source: Source, config: ExperimentConfig, data_dir: Path, output: Path | None
) -> tuple[ModelBundle, Path, str | None]:
    """:func:`~aitrader.validation.experiment.run_train` with a progress bar of its features."""
    from aitrader.validation.experiment import run_train

    with progress(transient=True) as bar:
        task = bar.add_task("features", total=None)
        return run_train(
            source,
            config,
            data_dir,
            output,
            lambda done, total: bar.update(task, completed=done, total=total),
        )


def _print_decision(tuned: SymbolThresholds | None) -> None:
    """Whether and how the trained bundle's decision was tuned, and whether it will trade."""
    if tuned is None:
        console.print(
            "decision: not tuned (the data set's symbol/timeframe is unknown); the bundle trades "
            "with the configured signals thresholds"
        )
    elif tuned.reached:
        console.print(f"decision tuned on the calibration slice: {tuned.describe()}")
    else:
        console.print(
            f"[bold yellow]this bundle will not trade[/] on {tuned.key}: {tuned.describe()}"
        )


def tune_command(
    ctx: typer.Context,
    dataset: str = DatasetArgument,
    model: str = ModelOption,
    trials: int = typer.Option(None, "--trials", "-n", help="Total trials of the study."),
    objective: str = typer.Option(None, "--objective", help="log_loss (default) or net_sharpe"),
    study: str = typer.Option(None, "--study", help="Study name (resumes if it exists)."),
    workers: int = typer.Option(None, "--workers", "-w", help="Trials evaluated in parallel."),
    max_folds: int = typer.Option(
        None, "--max-folds", help="Score each trial on the last N walk-forward folds (faster)."
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Run trials on Ray: 'local', 'auto' or ray://host:port."
    ),
    no_track: bool = NoTrackOption,
    as_json: bool = JsonOption,
) -> None:
    """Tune with Optuna (TPE) on a walk-forward objective; killed studies resume.

    Every trial counts in the deflated Sharpe ratio; PBO is computed via CSCV over the trials.
    The default study name is MODEL-DATASET-TIMEFRAME-OBJECTIVE, so studies never mix.

    Example: aitrader tune sample:BTC-USD-1h -k logistic --trials 10 --max-folds 8
    """
    from aitrader.validation.tuning import run_tune

    cfg = settings(ctx)
    overrides = {"n_trials": trials, "objective": objective, "study_name": study}
    overrides |= {"workers": workers, "ray_address": ray_address}
    config = _experiment(cfg, model, no_track, **overrides)
    if max_folds is not None:
        folds = _override(config.validation, "--max-folds", max_folds=max_folds)
        config = config.model_copy(update={"validation": folds})
    source = _source(cfg, dataset)
    with progress(transient=True) as bar:
        task = bar.add_task(f"tuning {config.models.kind}", total=None)
        result, run_id = run_tune(
            source,
            config,
            cfg.data.dir,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    summary: dict[str, Any] = {"dataset": source.name, "model": config.models.kind}
    summary |= {k: v for k, v in vars(result).items() if not isinstance(v, dict)}
    summary["run_id"] = run_id
    if as_json:
        emit_json(summary | {"best_params": result.best_params, "best": result.best_metrics})
        return
    _print(f"Tuning study {result.study_name}", summary | result.best_params)


models_app = typer.Typer(
    help="Model kinds, and the versioned model store: list, promote, rollback.",
    no_args_is_help=True,
)
models_app.command("list")(model_store.list_command)
models_app.command("promote")(model_store.promote_command)
models_app.command("rollback")(model_store.rollback_command)


@models_app.command("kinds")
def list_kinds_command(as_json: bool = JsonOption) -> None:
    """Show every model kind with its parameters (defaults), extra and bundle format.

    Set a kind's parameters in the config section named after it, e.g.
    `models: {kind: lightgbm, lightgbm: {n_estimators: 300}}`.

    Example: aitrader models kinds --json
    """
    rows = [kinds.get(name).describe() for name in kinds.names()]
    if as_json:
        emit_json(rows)
        return
    columns = ["kind", "params (defaults)", "raw features", "tunable", "extra", "bundle", "summary"]
    console.print(
        table(
            "Model kinds",
            columns,
            (
                [
                    r["name"],
                    ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-",
                    "yes" if r["raw_features"] else "no",
                    "yes" if r["tunable"] else "no",
                    (r["extra"] or "-") + ("" if r["installed"] else " (not installed)"),
                    r["bundle"],
                    r["summary"],
                ]
                for r in rows
            ),
        )
    )
