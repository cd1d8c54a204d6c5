"""The honest pipeline: features → labels → folds → (scaler, model, calibrator, threshold) fitted
per fold on training rows only → out-of-sample probabilities, metrics and net-of-cost P&L.

Per fold the model trains on the purged training rows, the calibrator and the decision threshold
on the calibration slice that lies strictly after them and before the test block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context

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
from aitrader.labels import LabelConfig, make_labels
from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.models.config import DecisionConfig, ModelConfig
from aitrader.models.decision import positions
from aitrader.models.factory import make_model, uses_scaler
from aitrader.models.predictor import Predictor
from aitrader.validation import metrics as m
from aitrader.validation.config import ValidationConfig
from aitrader.validation.splits import MIN_CALIBRATION, Fold, LabelWindows, purge

Progress = Callable[[int, int], None]
CATEGORICAL = frozenset({"direction3", "binary", "triple_barrier"})


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
    )


def fit_threshold(
    proba: np.ndarray, next_return: np.ndarray, decision: DecisionConfig, costs: CostsConfig
) -> float:
    """The grid threshold with the largest net P&L (ties: the larger, i.e. fewer trades)."""
    best, best_pnl = decision.grid[-1], -np.inf
    for threshold in decision.grid:
        held = positions(proba, threshold, decision.allow_short)
        pnl = float(m.net_returns(held, next_return, costs).sum())
        if pnl >= best_pnl:
            best, best_pnl = threshold, pnl
    return float(best)


def fit_predictor(
    prepared: Prepared, fold: Fold, config: ModelConfig, costs: CostsConfig
) -> Predictor:
    """Fit scaler and model on ``fold.train``, calibrator and threshold on ``fold.calibrate``.

    BLAS threads are capped at ``config.n_jobs``: oversubscribed OpenBLAS threads (parallel
    folds or trials on few cores) slow linear models down tenfold.
    """
    with threadpool_limits(limits=config.n_jobs, user_api="blas"):
        return _fit_predictor(prepared, fold, config, costs)


def _fit_predictor(
    prepared: Prepared, fold: Fold, config: ModelConfig, costs: CostsConfig
) -> Predictor:
    x_train = prepared.X.iloc[fold.train]
    scaler = None
    if uses_scaler(config):
        scaler = FeatureScaler(config.scaler, config.scaler_clip).fit(x_train)  # type: ignore[arg-type]
    model = make_model(config).fit(
        x_train if scaler is None else scaler.transform(x_train), prepared.y[fold.train]
    )
    names = tuple(str(c) for c in prepared.X.columns)
    decision = config.decision
    chain = Predictor(names, prepared.classes, model, scaler, None, 1.0, decision.allow_short)
    if fold.calibrate.size == 0:
        if decision.threshold is None:
            raise ConfigError("fitting the decision threshold needs a calibration slice")
        return replace(chain, threshold=decision.threshold)
    x_cal = prepared.X.iloc[fold.calibrate]
    if config.calibration != "none":
        codes = m.encode(prepared.y[fold.calibrate], prepared.classes)
        calibrator = ProbabilityCalibrator(config.calibration).fit(chain.raw_proba(x_cal), codes)
        chain = replace(chain, calibrator=calibrator)
    threshold = decision.threshold
    if threshold is None:
        proba = chain.predict_proba(x_cal)
        threshold = fit_threshold(proba, prepared.next_return[fold.calibrate], decision, costs)
    return replace(chain, threshold=threshold)


@dataclass(frozen=True)
class FoldOutput:
    """Out-of-sample probabilities of one fold and what was fitted to produce them."""

    fold: Fold
    proba: np.ndarray
    raw_proba: np.ndarray
    climatology: np.ndarray
    threshold: float


def run_fold(prepared: Prepared, fold: Fold, config: ModelConfig, costs: CostsConfig) -> FoldOutput:
    """Fit on the fold's training side and predict its test rows."""
    chain = fit_predictor(prepared, fold, config, costs)
    x_test = prepared.X.iloc[fold.test]
    seen = np.concatenate([fold.train, fold.calibrate])
    counts = np.bincount(m.encode(prepared.y[seen], prepared.classes), minlength=len(chain.classes))
    with threadpool_limits(limits=config.n_jobs, user_api="blas"):
        proba, raw = chain.predict_proba(x_test), chain.raw_proba(x_test)
    return FoldOutput(fold, proba, raw, counts / counts.sum(), chain.threshold)


_WORKER: Prepared | None = None


def _init_worker(prepared: Prepared) -> None:
    global _WORKER
    _WORKER = prepared


def _worker_fold(fold: Fold, config: ModelConfig, costs: CostsConfig) -> FoldOutput:
    assert _WORKER is not None, "worker initialised without data"
    return run_fold(_WORKER, fold, config, costs)


def run_folds(
    prepared: Prepared,
    folds: list[Fold],
    config: ModelConfig,
    costs: CostsConfig,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> list[FoldOutput]:
    """Every fold, serially or on a local process pool of ``n_jobs`` workers (order kept)."""
    outputs: dict[int, FoldOutput] = {}
    if n_jobs <= 1 or len(folds) < 2:
        for fold in folds:
            outputs[fold.number] = run_fold(prepared, fold, config, costs)
            if progress is not None:
                progress(len(outputs), len(folds))
        return [outputs[f.number] for f in folds]
    context = get_context("spawn")
    with ProcessPoolExecutor(n_jobs, context, _init_worker, (prepared,)) as pool:
        futures = [pool.submit(_worker_fold, fold, config, costs) for fold in folds]
        for future in as_completed(futures):
            output = future.result()
            outputs[output.fold.number] = output
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
