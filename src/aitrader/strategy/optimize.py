"""``aitrader optimize``: search a strategy's declared parameters, counting every trial.

Each trial backtests one parameter set through the path that trades
(:func:`~aitrader.strategy.run.backtest_strategy`: risk manager, costs) over the traded bars,
cut into ``folds`` consecutive blocks. The objective is the mean per-bar Sharpe of the blocks
(net of costs), so a set that only works in one period scores low. Small discrete spaces are
searched exhaustively (a grid), larger ones with Optuna's TPE; both run in one persistent Optuna
study named after strategy, data and timeframe, so a rerun resumes and studies never mix.

What it reports is honest about the search: the deflated Sharpe ratio of the best set (N = every
trial evaluated), the probability of backtest overfitting (CSCV over all trials' returns) and a
walk-forward estimate — in each block the set that was best on the blocks before it, traded on
that block — which no parameter choice saw in advance.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.strategy.base import Param, Strategy
from aitrader.strategy.run import Candles, RunSpec, backtest_strategy
from aitrader.validation.overfitting import deflated_sharpe, pbo_cscv

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
INVALID = -1e9  # objective of a parameter set the strategy refuses (e.g. fast ≥ slow)


@dataclass(frozen=True)
class OptimizeConfig:
    """Trials to run (TPE), blocks of the walk-forward objective, the largest grid searched
    exhaustively, the sampler seed, and where the study lives."""

    trials: int = 50
    folds: int = 4
    max_grid: int = 200
    seed: int = 0
    data_dir: Path = Path("data")
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters set, not searched


@dataclass(frozen=True)
class OptimizeResult:
    study: str
    method: str  # grid or tpe
    trials: int  # trials evaluated (valid parameter sets) in the study, all runs
    best_params: dict[str, Any]
    best_score: float  # mean per-bar Sharpe over the blocks
    fold_sharpes: list[float]
    dsr: float
    pbo: float
    walk_forward_sharpe: float  # per bar, blocks 2.. traded with the set best before them
    bars: int


def search_space(cls: type[Strategy], fixed: Iterable[str] = ()) -> dict[str, Param]:
    """The parameters with a range or choices, less the ``fixed`` ones (the others keep their
    defaults)."""
    skip = set(fixed)
    return {
        k: p for k, p in cls.parameters().items() if k not in skip and (p.tunable or p.kind is bool)
    }


def grid(space: dict[str, Param], limit: int) -> dict[str, list[Any]] | None:
    """Every value of each parameter when the space is discrete and has ≤ ``limit`` points."""
    axes: dict[str, list[Any]] = {}
    for name, p in space.items():
        if p.choices is not None:
            axes[name] = list(p.choices)
        elif p.kind is bool:
            axes[name] = [False, True]
        elif p.low is not None and p.high is not None and (p.kind is int or p.step):
            step = p.step or 1
            count = math.floor((p.high - p.low) / step + 1e-9) + 1
            if count > limit:
                return None
            axes[name] = [p.kind(p.low + k * step) for k in range(count)]
        else:
            return None
    size = math.prod(len(v) for v in axes.values())
    return axes if 0 < size <= limit else None


def _suggest(trial: optuna.Trial, space: dict[str, Param]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.choices is not None or p.kind is bool:
            out[name] = trial.suggest_categorical(name, list(p.choices or (False, True)))
        elif p.kind is int:
            low, high = int(p.low or 0), int(p.high or 0)
            out[name] = trial.suggest_int(name, low, high, step=int(p.step or 1), log=p.log)
        else:
            low_f, high_f = float(p.low or 0), float(p.high or 0)
            out[name] = trial.suggest_float(name, low_f, high_f, step=p.step, log=p.log)
    return out


def fold_bounds(n: int, folds: int) -> list[tuple[int, int]]:
    """``folds`` consecutive blocks of ``n`` bars as (start, stop) positions."""
    if folds < 2 or n < 20 * folds:
        raise ConfigError(f"optimize: {n} bars are too few for {folds} folds (≥ 20 bars each)")
    edges = np.linspace(0, n, folds + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def sharpe(returns: np.ndarray) -> float:
    sd = float(np.std(returns, ddof=1)) if returns.size > 1 else 0.0
    return float(np.mean(returns) / sd) if sd > 0 else 0.0


def study_name(strategy: str, datasets: list[str], timeframe: str) -> str:
    """``optimize:STRATEGY:DATA+DATA:TIMEFRAME`` — one study per strategy, data and timeframe."""
    return f"optimize:{strategy}:{'+'.join(datasets)}:{timeframe}"


def _store(config: OptimizeConfig, name: str) -> tuple[str, Path]:
    root = Path(config.data_dir).expanduser().resolve()
    folder = root / "optimize" / re.sub(r"[^A-Za-z0-9_.+-]+", "_", name)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'optimize.db'}", folder


class _Objective:
    """One trial: build the strategy, backtest, save its per-bar returns, score the blocks."""

    def __init__(
        self, cls: type[Strategy], run: tuple[Candles, Settings, RunSpec], folder: Path,
        config: OptimizeConfig,
    ):  # fmt: skip
        self.cls, self.run, self.folder = cls, run, folder
        self.folds, self.fixed = config.folds, config.fixed
        self.bounds: list[tuple[int, int]] | None = None

    def __call__(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        try:
            strategy = self.cls(**{**self.fixed, **params})
        except ConfigError as exc:
            trial.set_user_attr("invalid", str(exc))
            return INVALID
        data, settings, spec = self.run
        equity = backtest_strategy(strategy, data, settings, spec).result.equity.to_numpy()
        returns = np.diff(equity, prepend=equity[0]) / np.r_[equity[0], equity[:-1]]
        np.save(self.folder / f"trial_{trial.number}.npy", returns)
        if self.bounds is None:
            self.bounds = fold_bounds(len(returns), self.folds)
        folds = [sharpe(returns[a:b]) for a, b in self.bounds]
        trial.set_user_attr("fold_sharpes", folds)
        return float(np.mean(folds))


def optimize(
    cls: type[Strategy],
    run: tuple[Candles, Settings, RunSpec],
    name: str,
    config: OptimizeConfig,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Search ``cls``'s parameter space over ``run`` (data, settings, spec); see the module."""
    space = search_space(cls, config.fixed)
    if not space:
        raise ConfigError(f"strategy {cls.name} declares no parameter with a range to search")
    axes = grid(space, config.max_grid)
    url, folder = _store(config, name)
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.GridSampler(axes, seed=config.seed)
        if axes is not None
        else optuna.samplers.TPESampler(seed=config.seed)
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=url, study_name=name, sampler=sampler, direction="maximize", load_if_exists=True
    )
    objective = _Objective(cls, run, folder, config)
    total = math.prod(len(v) for v in axes.values()) if axes is not None else config.trials
    k = 0
    while k < total:  # a grid runs until every point was evaluated (also across reruns)
        if isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study):
            break
        study.optimize(lambda t: objective(t, _suggest(t, space)), n_trials=1)
        k += 1
        if progress is not None:
            progress(k, total)
    return summarise(study, folder, "grid" if axes is not None else "tpe", config.folds)


def _valid(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "invalid" not in t.user_attrs
    ]


def summarise(study: optuna.Study, folder: Path, method: str, folds: int) -> OptimizeResult:
    """Best set, DSR (N = every valid trial), PBO (CSCV) and the walk-forward estimate."""
    trials = _valid(study)
    if not trials:
        raise ConfigError(f"study {study.study_name!r}: no valid parameter set was evaluated")
    matrix = np.column_stack([np.load(folder / f"trial_{t.number}.npy") for t in trials])
    best = max(range(len(trials)), key=lambda j: float(trials[j].value or INVALID))
    sharpes = np.array([sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
    variance = float(np.var(sharpes, ddof=1)) if len(trials) > 1 else 0.0
    dsr = deflated_sharpe(matrix[:, best], len(trials), variance)
    pbo = math.nan
    if matrix.shape[1] >= 2 and matrix.shape[0] >= 20:
        pbo = pbo_cscv(matrix, splits=10).pbo
    bounds = fold_bounds(matrix.shape[0], folds)
    return OptimizeResult(
        study=study.study_name,
        method=method,
        trials=len(trials),
        best_params=dict(trials[best].params),
        best_score=float(trials[best].value or math.nan),
        fold_sharpes=list(trials[best].user_attrs.get("fold_sharpes", [])),
        dsr=float(dsr),
        pbo=float(pbo),
        walk_forward_sharpe=sharpe(walk_forward_returns(matrix, bounds)),
        bars=matrix.shape[0],
    )


def walk_forward_returns(matrix: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Block k (k ≥ 1) traded with the column whose mean block Sharpe was best on blocks < k."""
    scores = np.array([[sharpe(matrix[a:b, j]) for j in range(matrix.shape[1])] for a, b in bounds])
    out = []
    for k in range(1, len(bounds)):
        chosen = int(np.argmax(scores[:k].mean(axis=0)))
        a, b = bounds[k]
        out.append(matrix[a:b, chosen])
    return np.concatenate(out)
