"""The honest pipeline: features → labels → folds → (scaler, model, calibrator) fitted per fold
on training rows only → out-of-sample probabilities.

Per fold the model trains on the purged training rows and the calibrator on the calibration slice
that lies strictly after them and before the test block; the fold keeps the calibrated
probabilities of that slice, on which the trading decision is tuned (``aitrader.strategy.edge``).
Every slice is predicted once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from aitrader.config import CostsConfig
from aitrader.data.store import checksum
from aitrader.data.timeframes import bars_per_year
from aitrader.errors import ConfigError, DataError
from aitrader.features.featureset import build_features
from aitrader.features.scaling import FeatureScaler
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.build import make_labels
from aitrader.labels.config import LabelConfig
from aitrader.models.agents import agent_outputs
from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model, uses_scaler
from aitrader.models.predictor import Predictor
from aitrader.strategy.regimes import agent_frame
from aitrader.validation import metrics as m
from aitrader.validation.config import ValidationConfig
from aitrader.validation.splits import MIN_CALIBRATION, Fold, LabelWindows, purge

Progress = Callable[[int, int], None]
CATEGORICAL = frozenset({"direction3", "binary", "triple_barrier"})
INTERVALS = r"^ret_(lo|hi)\d+$"  # the interval bounds among a model's named outputs


@dataclass(frozen=True)
class Prepared:
    """Model-ready rows: finite features, a label, its window and the next bar's return."""

    X: pd.DataFrame
    y: np.ndarray
    classes: np.ndarray
    windows: LabelWindows
    next_return: np.ndarray
    horizon: int
    spec_hash: str
    label_name: str
    periods_per_year: float
    data_checksum: str
    candles: pd.DataFrame  # the OHLCV bars the rows came from (the decision trades on them)


def periods_per_year(index: pd.DatetimeIndex, calendar: str = "crypto") -> float:
    """Bars per year from the median bar spacing (crypto: 365 days; equity: 252 sessions)."""
    step = round(float(np.median(np.diff(index.as_unit("ns").asi8))) / 1e9)
    return bars_per_year(f"{max(step, 1)}s", calendar)


def prepare(
    candles: pd.DataFrame,
    features: FeaturesConfig | Sequence[FeatureSpec],
    labels: LabelConfig,
    costs: CostsConfig,
    timeframe: str | None = None,
    progress: Progress | None = None,
    calendar: str = "crypto",
) -> Prepared:
    """Build features and labels and keep the rows where both exist (nothing is filled in)."""
    if labels.kind not in CATEGORICAL:
        raise ConfigError(
            f"labels.kind {labels.kind!r} is a regression target; the classifiers need "
            f"one of {', '.join(sorted(CATEGORICAL))}"
        )
    matrix = build_features(candles, features, progress, timeframe)
    made = make_labels(candles, labels, costs)
    frame = matrix.frame
    target = made.target.reindex(frame.index)
    keep = np.isfinite(frame.to_numpy()).all(axis=1) & made.mask.reindex(frame.index).to_numpy()
    keep &= target.notna().to_numpy()
    rows = frame.index[keep]
    close = candles["close"]
    next_return = (close.shift(-1) / close - 1.0).reindex(rows).to_numpy(dtype=np.float64)
    y = target.loc[rows].to_numpy(dtype=np.float64)
    return Prepared(
        X=frame.loc[rows],
        y=y,
        classes=np.unique(y),
        windows=LabelWindows.from_labels(made, rows),
        next_return=next_return,
        horizon=made.horizon,
        spec_hash=matrix.spec_hash,
        label_name=made.name,
        periods_per_year=periods_per_year(pd.DatetimeIndex(candles.index), calendar),
        data_checksum=checksum(candles),
        candles=candles[["open", "high", "low", "close", "volume"]],
    )


def fit_predictor(prepared: Prepared, fold: Fold, config: ModelConfig) -> Predictor:
    """Fit scaler and model on ``fold.train`` and the calibrator on ``fold.calibrate``."""
    return fit_chain(prepared, fold, config)[0]


def fit_chain(prepared: Prepared, fold: Fold, config: ModelConfig) -> tuple[Predictor, np.ndarray]:
    """The fitted chain and its calibrated probabilities on ``fold.calibrate`` (rows × classes).

    BLAS threads are capped at ``config.n_jobs``: oversubscribed OpenBLAS threads (parallel
    folds or trials on few cores) slow linear models down tenfold.
    """
    with threadpool_limits(limits=config.n_jobs, user_api="blas"):
        return _fit_chain(prepared, fold, config)


def _fit_chain(prepared: Prepared, fold: Fold, config: ModelConfig) -> tuple[Predictor, np.ndarray]:
    x_train = prepared.X.iloc[fold.train]
    scaler = None
    if uses_scaler(config):
        scaler = FeatureScaler(config.scaler, config.scaler_clip).fit(x_train)  # type: ignore[arg-type]
    model = make_model(config)
    check = getattr(model, "check_horizon", None)  # a kind that purges inside its own fit
    if check is not None:
        check(prepared.horizon)
    model.fit(x_train if scaler is None else scaler.transform(x_train), prepared.y[fold.train])
    names = tuple(str(c) for c in prepared.X.columns)
    chain = Predictor(names, prepared.classes, model, scaler, None)
    if fold.calibrate.size == 0:
        return chain, np.empty((0, len(prepared.classes)))
    raw = chain.proba_at(prepared.X, fold.calibrate, calibrated=False)
    if config.calibration == "none":
        return chain, raw
    codes = m.encode(prepared.y[fold.calibrate], prepared.classes)
    calibrator = ProbabilityCalibrator(config.calibration).fit(raw, codes)
    return replace(chain, calibrator=calibrator), calibrator.transform(raw)


@dataclass(frozen=True)
class FoldOutput:
    """Out-of-sample probabilities of one fold, the calibrated probabilities of its calibration
    slice, the training climatology, what the fold's agents say on the calibration and test
    bars that the decision trades with (``agents``: :func:`~aitrader.strategy.regimes.agent_frame`,
    HMM tier, GARCH range and σ) and the model's intervals on the test rows, which are scored
    (``intervals``: the ``ret_lo*`` / ``ret_hi*`` outputs; None for a model without any)."""

    fold: Fold
    proba: np.ndarray
    calibration_proba: np.ndarray
    climatology: np.ndarray
    agents: pd.DataFrame | None = None
    intervals: pd.DataFrame | None = None


def run_fold(prepared: Prepared, fold: Fold, config: ModelConfig) -> FoldOutput:
    """Fit on the fold's training side and predict its test rows (once)."""
    chain, calibration = fit_chain(prepared, fold, config)
    seen = np.concatenate([fold.train, fold.calibrate])
    counts = np.bincount(m.encode(prepared.y[seen], prepared.classes), minlength=len(chain.classes))
    with threadpool_limits(limits=config.n_jobs, user_api="blas"):
        proba = chain.proba_at(prepared.X, fold.test)
        intervals = None
        if getattr(chain.model, "outputs", None) is not None:
            intervals = agent_outputs(chain, prepared.X.iloc[fold.test]).filter(regex=INTERVALS)
    index = prepared.X.index[np.concatenate([fold.calibrate, fold.test])]
    agents = agent_frame(chain, prepared.candles, index)
    return FoldOutput(fold, proba, calibration, counts / counts.sum(), agents, intervals)


_WORKER: Prepared | None = None
T = TypeVar("T")


def _init_worker(prepared: Prepared) -> None:
    global _WORKER
    _WORKER = prepared


def in_worker(task: Callable[..., T], *args: Any) -> T:
    """Run ``task(prepared, *args)`` in a :func:`fold_pool` worker on the data it holds."""
    assert _WORKER is not None, "worker initialised without data"
    return task(_WORKER, *args)


PARALLEL_ROWS = 20_000
"""``n_jobs`` None runs folds on one worker per core from this many rows (a worker takes
seconds to start, more than a small data set's folds)."""


def fold_workers(n_jobs: int | None, rows: int, folds: int) -> int:
    """Worker processes for ``folds`` folds: ``n_jobs``, or with None one per available core on
    data sets of at least :data:`PARALLEL_ROWS` rows (serial below); never more than folds."""
    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if rows >= PARALLEL_ROWS else 1
    return max(1, min(n_jobs, folds))


@contextmanager
def fold_pool(prepared: Prepared, workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A spawn process pool whose workers hold ``prepared`` (None for one worker)."""
    if workers <= 1:
        yield None
        return
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, context, _init_worker, (prepared,)) as pool:
        yield pool


def _fold_task(
    prepared: Prepared,
    fold: Fold,
    config: ModelConfig,
    after: Callable[[Prepared, FoldOutput], T] | None,
) -> FoldOutput | T:
    output = run_fold(prepared, fold, config)
    return output if after is None else after(prepared, output)


def run_folds(
    prepared: Prepared,
    folds: list[Fold],
    config: ModelConfig,
    pool: ProcessPoolExecutor | None = None,
    progress: Progress | None = None,
    after: Callable[[Prepared, FoldOutput], Any] | None = None,
) -> list[Any]:
    """Every fold's output (``after(prepared, output)`` when given, in the same task), serially
    or on ``pool`` (order kept). The largest folds start first so the pool does not wait on one
    long fold at the end."""
    outputs: dict[int, Any] = {}
    if pool is None:
        for fold in folds:
            outputs[fold.number] = _fold_task(prepared, fold, config, after)
            if progress is not None:
                progress(len(outputs), len(folds))
        return [outputs[f.number] for f in folds]
    ordered = sorted(folds, key=lambda f: -f.train.size)
    futures = {pool.submit(in_worker, _fold_task, f, config, after): f.number for f in ordered}
    for future in as_completed(futures):
        outputs[futures[future]] = future.result()
        if progress is not None:
            progress(len(outputs), len(folds))
    return [outputs[f.number] for f in folds]


def final_fold(prepared: Prepared, validation: ValidationConfig) -> Fold:
    """The fold for a deployable model: every row, the last ``calibration_fraction`` of them
    for the calibrator and threshold, the rest (purged against them) for the model."""
    n = len(prepared.windows)
    size = max(MIN_CALIBRATION, round(validation.calibration_fraction * n))
    if n < 2 * size:
        raise DataError(f"{n} labelled rows are too few to train and calibrate a model")
    embargo = prepared.horizon if validation.embargo is None else validation.embargo
    calibrate = np.arange(n - size, n)
    model = purge(np.arange(n - size), calibrate, prepared.windows, embargo)
    return Fold(0, model, np.empty(0, dtype=np.int64), calibrate)
