"""Optuna (TPE) tuning with a walk-forward objective that counts every trial.

The study lives in an RDB storage (SQLite by default) so a killed run resumes: trials left
RUNNING by a dead process are marked FAIL, every trial ever started counts toward ``n_trials``
and toward the deflated Sharpe ratio. Trials are asked and told in this process and evaluated
inline, on a local process pool (``workers`` > 1) or on Ray (``ray_address``). Each trial's
out-of-sample net returns are kept under ``<data dir>/tuning/<study>/`` for PBO via CSCV.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from optuna.trial import Trial, TrialState

from aitrader.errors import ConfigError
from aitrader.models.config import ModelConfig
from aitrader.models.kinds import get as get_kind
from aitrader.strategy.edge import DecisionContext
from aitrader.validation.config import TuningConfig, ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, Source, prepare_source, record
from aitrader.validation.overfitting import deflated_sharpe, pbo_cscv
from aitrader.validation.tracking import start_run
from aitrader.validation.walkforward import Prepared, Progress, fold_pool, fold_workers

log = logging.getLogger(__name__)
Submit = Callable[[ModelConfig], "Future[TrialResult]"]


@dataclass(frozen=True)
class TrialResult:
    """What one walk-forward evaluation of a candidate returns to the study."""

    metrics: dict[str, float]
    net_returns: np.ndarray


def suggest(trial: Trial, base: ModelConfig) -> ModelConfig:
    """A candidate: the kind's search space (declared by the kind) and its calibration."""
    values = base.model_dump()
    space = get_kind(base.kind).space
    if space is not None:
        values[base.kind] = base.params().model_dump() | space(trial)
    values["calibration"] = trial.suggest_categorical("calibration", ["sigmoid", "isotonic"])
    return ModelConfig.model_validate(values)


def evaluate_candidate(
    prepared: Prepared,
    model: ModelConfig,
    validation: ValidationConfig,
    context: DecisionContext,
    pool: ProcessPoolExecutor | None = None,
) -> TrialResult:
    """Walk-forward out-of-sample metrics and net returns (the managed engine's) of one
    candidate, traded as ``context`` says (folds on ``pool``, or as ``validation.n_jobs``
    says)."""
    result = evaluate(prepared, model, validation, context, candidates=False, pool=pool)
    return TrialResult(result.metrics, result.returns.to_numpy())


def _serial(validation: ValidationConfig) -> ValidationConfig:
    """Folds one after the other: trials on a pool or on Ray are the parallel unit."""
    return validation.model_copy(update={"n_jobs": 1})


_WORKER: tuple[Prepared, ValidationConfig, DecisionContext] | None = None


def _init_worker(
    prepared: Prepared, validation: ValidationConfig, context: DecisionContext
) -> None:
    global _WORKER
    _WORKER = (prepared, validation, context)


def _worker_trial(model: ModelConfig) -> TrialResult:
    assert _WORKER is not None, "worker initialised without data"
    return evaluate_candidate(_WORKER[0], model, _serial(_WORKER[1]), _WORKER[2])


def study_name(config: ExperimentConfig, source: Source) -> str:
    """``tuning.study_name``, or by default ``KIND-DATASET-TIMEFRAME-OBJECTIVE`` (and
    ``-lastNfolds`` with ``validation.max_folds``), so trials of different models, data sets,
    timeframes, objectives or fold sets never share a study (or a DSR)."""
    tuning = config.tuning
    if tuning.study_name is not None:
        return tuning.study_name
    parts = [config.models.kind, source.name, source.timeframe or "", tuning.objective]
    if config.validation.max_folds is not None:
        parts.append(f"last{config.validation.max_folds}folds")
    return "-".join(re.sub(r"[^A-Za-z0-9._]+", "_", p).strip("_") for p in parts if p)


def open_study(tuning: TuningConfig, data_dir: Path) -> optuna.Study:
    """Create or resume the study; trials a dead process left RUNNING are marked FAIL."""
    assert tuning.study_name is not None, "resolve the study name first (study_name)"
    url = tuning.storage or f"sqlite:///{Path(data_dir).expanduser().resolve() / 'optuna.db'}"
    Path(data_dir).expanduser().mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    sampler = optuna.samplers.TPESampler(seed=tuning.seed, constant_liar=True)
    direction: Literal["minimize", "maximize"] = (
        "minimize" if tuning.objective == "log_loss" else "maximize"
    )
    study = optuna.create_study(
        storage=storage,
        study_name=tuning.study_name,
        sampler=sampler,
        direction=direction,
        load_if_exists=True,
    )
    study_id = storage.get_study_id_from_name(tuning.study_name)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, stale.number)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        log.warning("trial %d of a previous run never finished: marked FAIL", stale.number)
    return study


def _objective(tuning: TuningConfig, result: TrialResult) -> float:
    key = "log_loss" if tuning.objective == "log_loss" else "net_sharpe_per_bar"
    return float(result.metrics[key])


def _tell(
    study: optuna.Study,
    trial: Trial,
    future: Future[TrialResult],
    tuning: TuningConfig,
    returns_dir: Path,
) -> None:
    try:
        result = future.result()
    except Exception as exc:  # a failed candidate is a counted, failed trial
        log.warning("trial %d failed: %s", trial.number, exc)
        study.tell(trial, state=TrialState.FAIL)
        return
    for key, value in result.metrics.items():
        trial.set_user_attr(key, float(value))
    np.save(returns_dir / f"trial_{trial.number}.npy", result.net_returns)
    study.tell(trial, _objective(tuning, result))


def run_trials(
    study: optuna.Study,
    config: ExperimentConfig,
    submit: Submit,
    returns_dir: Path,
    progress: Progress | None = None,
) -> None:
    """Ask, evaluate and tell until the study holds ``n_trials`` trials (all states count)."""
    tuning = config.tuning
    todo = max(0, tuning.n_trials - len(study.get_trials(deepcopy=False)))
    pending: dict[Future[TrialResult], Trial] = {}
    asked = done = 0
    deadline = time.monotonic() + tuning.timeout if tuning.timeout else float("inf")
    while asked < todo or pending:
        if time.monotonic() > deadline:
            todo = asked  # no new trials after the timeout; running ones finish
        while asked < todo and len(pending) < tuning.workers:
            trial = study.ask()
            try:
                candidate = suggest(trial, config.models)
            except (ValueError, ConfigError) as exc:
                log.warning("trial %d: invalid candidate (%s)", trial.number, exc)
                study.tell(trial, state=TrialState.FAIL)
            else:
                pending[submit(candidate)] = trial
            asked += 1
        if not pending:
            break
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            _tell(study, pending.pop(future), future, tuning, returns_dir)
            done += 1
            if progress is not None:
                progress(done, todo)


def _inline(
    prepared: Prepared,
    config: ExperimentConfig,
    context: DecisionContext,
    pool: ProcessPoolExecutor | None,
) -> Submit:
    def submit(model: ModelConfig) -> Future[TrialResult]:
        future: Future[TrialResult] = Future()
        try:
            result = evaluate_candidate(prepared, model, config.validation, context, pool)
            future.set_result(result)
        except Exception as exc:
            future.set_exception(exc)
        return future

    return submit


def _ray(prepared: Prepared, config: ExperimentConfig, context: DecisionContext) -> Submit:
    try:
        import ray
    except ImportError:
        raise ConfigError("tuning on Ray needs: pip install 'aitrader[distributed]'") from None
    if not ray.is_initialized():
        address = config.tuning.ray_address
        ray.init(address=None if address == "local" else address, include_dashboard=False)
    data = ray.put(prepared)
    remote = ray.remote(evaluate_candidate)

    def submit(model: ModelConfig) -> Future[TrialResult]:
        ref = remote.remote(data, model, _serial(config.validation), context)
        return ref.future()

    return submit


@dataclass(frozen=True)
class TuneResult:
    """The study's outcome, with every trial counted in the overfitting statistics."""

    study_name: str
    trials: int
    completed: int
    failed: int
    best_value: float
    best_params: dict[str, Any]
    best_metrics: dict[str, float]
    dsr: float
    pbo: float


def summarise(study: optuna.Study, returns_dir: Path) -> TuneResult:
    """Best trial, DSR (N = every trial started; variance of completed trials' Sharpes) and PBO
    via CSCV over the completed trials' out-of-sample returns."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"study {study.study_name!r} has no completed trial yet")
    best = study.best_trial
    series = {t.number: np.load(returns_dir / f"trial_{t.number}.npy") for t in complete}
    sharpes = np.array([t.user_attrs.get("net_sharpe_per_bar", 0.0) for t in complete])
    variance = float(np.var(sharpes, ddof=1)) if len(complete) > 1 else 0.0
    best_returns = series[best.number]
    dsr = deflated_sharpe(best_returns, len(trials), variance) if best_returns.size > 2 else np.nan
    lengths = {len(s) for s in series.values()}
    pbo = np.nan
    if len(series) >= 2 and len(lengths) == 1 and lengths.pop() >= 20:
        pbo = pbo_cscv(np.column_stack(list(series.values())), splits=10).pbo
    return TuneResult(
        study_name=study.study_name,
        trials=len(trials),
        completed=len(complete),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        best_value=float(best.value if best.value is not None else np.nan),
        best_params=dict(best.params),
        best_metrics={k: float(v) for k, v in best.user_attrs.items()},
        dsr=float(dsr),
        pbo=float(pbo),
    )


def tune(
    prepared: Prepared,
    config: ExperimentConfig,
    data_dir: Path,
    progress: Progress | None = None,
    context: DecisionContext | None = None,
) -> TuneResult:
    """Run (or resume) the study of ``config.tuning`` (its ``study_name`` set) on ``prepared``,
    each trial traded as ``context`` says, and summarise it."""
    tuning = config.tuning
    context = context or config.context()
    study = open_study(tuning, data_dir)
    returns_dir = Path(data_dir).expanduser() / "tuning" / str(tuning.study_name)
    returns_dir.mkdir(parents=True, exist_ok=True)
    if tuning.ray_address is not None:
        run_trials(study, config, _ray(prepared, config, context), returns_dir, progress)
    elif tuning.workers > 1:
        args = (prepared, config.validation, context)
        spawn = get_context("spawn")
        with ProcessPoolExecutor(tuning.workers, spawn, _init_worker, args) as pool:
            submit: Submit = lambda m: pool.submit(_worker_trial, m)  # noqa: E731
            run_trials(study, config, submit, returns_dir, progress)
    else:  # one trial at a time, its folds on one pool that lives as long as the study
        cores = len(os.sched_getaffinity(0))
        workers = fold_workers(config.validation.n_jobs, len(prepared.y), cores)
        with fold_pool(prepared, workers) as pool:
            submit = _inline(prepared, config, context, pool)
            run_trials(study, config, submit, returns_dir, progress)
    return summarise(study, returns_dir)


def run_tune(
    source: Source, config: ExperimentConfig, data_dir: Path, progress: Progress | None = None
) -> tuple[TuneResult, str | None]:
    """Tune on ``source`` (study name: :func:`study_name`) and record the study's outcome in
    MLflow; returns the run id."""
    name = study_name(config, source)
    config = config.model_copy(
        update={"tuning": config.tuning.model_copy(update={"study_name": name})}
    )
    prepared = prepare_source(source, config)
    context = config.context(source.symbol, source.timeframe, source.calendar)
    result = tune(prepared, config, data_dir, progress, context)
    run = start_run(config.tracking, data_dir, f"tune {config.models.kind} {source.name}")
    if run is None:
        return result, None
    with run:
        record(run, config, prepared, source)
        run.set_tags({"study": result.study_name})
        summary = {"trials": result.trials, "completed": result.completed, "failed": result.failed}
        run.log_metrics(
            {f"best_{k}": v for k, v in result.best_metrics.items()}
            | {k: float(v) for k, v in summary.items()}
            | {"dsr": result.dsr, "pbo": result.pbo, "best_value": result.best_value}
        )
        run.log_json("best_params.json", result.best_params)
    return result, run.run_id
