"""Tracked experiments: evaluate (walk-forward + overfitting statistics) and train (a bundle).

This is the pipeline layer the CLI calls: it gathers the typed config sections, runs the honest
pipeline and records everything in MLflow. Models never see the tracker.

Evaluation trades the model as a bundle would (``risk``, ``plans`` stop, ``signals``; see
:mod:`aitrader.validation.evaluation`). Training a bundle also tunes the decision (EV margin and
sides, ``signals.min_trades``) for the data set's symbol:timeframe on the bundle's calibration
slice — rows strictly after the model's (purged) training rows, never the training rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError, model_validator

from aitrader.config import CostsConfig, Settings, format_validation_error
from aitrader.errors import ConfigError
from aitrader.features.spec import FeaturesConfig, FeatureSpec, canonical_specs
from aitrader.frozen import Frozen
from aitrader.labels.config import LabelConfig
from aitrader.models import kinds
from aitrader.models.config import ModelConfig
from aitrader.models.drift import drift_reference
from aitrader.models.hmm import HMMRegimeModel
from aitrader.models.registry import BundleInfo, ModelBundle, save_bundle
from aitrader.risk.config import RiskConfig
from aitrader.strategy.config import ModesConfig, PlanConfig, SignalConfig
from aitrader.strategy.edge import (
    SIDE_SETS,
    DecisionContext,
    garch_stop_multiple,
    plan_stop,
    tune_decision,
)
from aitrader.strategy.regimes import find_agent, regime_source
from aitrader.strategy.signals import SymbolThresholds, direction_probabilities
from aitrader.validation.config import TrackingConfig, TuningConfig, ValidationConfig
from aitrader.validation.evaluation import Evaluation, evaluate
from aitrader.validation.overfitting import deflated_sharpe, pbo_cscv
from aitrader.validation.splits import Fold
from aitrader.validation.tracking import Run, git_sha, start_run
from aitrader.validation.walkforward import Prepared, Progress, final_fold, fit_chain, prepare

SECTIONS = (
    "features",
    "labels",
    "costs",
    "models",
    "validation",
    "tuning",
    "tracking",
    "signals",
    "risk",
    "plans",
    "modes",
)


class ExperimentConfig(Frozen):
    """Every section an experiment depends on, gathered from the settings in one typed object."""

    features: FeaturesConfig = FeaturesConfig()
    labels: LabelConfig = LabelConfig()
    costs: CostsConfig = CostsConfig()
    models: ModelConfig = ModelConfig()
    validation: ValidationConfig = ValidationConfig()
    tuning: TuningConfig = TuningConfig()
    tracking: TrackingConfig = TrackingConfig()
    signals: SignalConfig = SignalConfig()
    risk: RiskConfig = RiskConfig()
    plans: PlanConfig = PlanConfig()
    modes: ModesConfig = ModesConfig()

    @model_validator(mode="after")
    def _kind_features(self) -> ExperimentConfig:
        """Append the features the model kind reads (e.g. ``lags``) when the set lacks them."""
        wanted = kinds.get(self.models.kind).required_features(self.models.params())
        have = {s.name for s in self.features.specs() if s.timeframe is None}
        missing = tuple(FeatureSpec.model_validate(w) for w in wanted if w["name"] not in have)
        if missing:
            extra = self.features.extra + missing
            object.__setattr__(
                self, "features", FeaturesConfig(preset=self.features.preset, extra=extra)
            )
        return self

    def context(
        self, symbol: str | None = None, timeframe: str | None = None, calendar: str = "crypto"
    ) -> DecisionContext:
        """How a model trades under these settings (what evaluation scores and bundles use)."""
        return DecisionContext(
            signals=self.signals,
            costs=self.costs,
            stop=plan_stop(self.plans),
            risk=self.risk,
            symbol=symbol,
            timeframe=timeframe,
            regime=self.modes.regime,
            calendar=calendar,
            garch_stop=garch_stop_multiple(self.plans),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ExperimentConfig:
        """The sections present in ``settings`` (defaults for the others), then ``overrides``."""
        values = {k: getattr(settings, k) for k in SECTIONS if hasattr(settings, k)}
        try:
            return cls.model_validate(values | overrides)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "experiment")) from None


@dataclass(frozen=True)
class Source:
    """The data an experiment runs on."""

    name: str
    candles: pd.DataFrame
    timeframe: str | None = None
    symbol: str | None = None
    calendar: str = "crypto"  # "equity" annualises with 252 sessions


def prepare_source(
    source: Source, config: ExperimentConfig, progress: Progress | None = None
) -> Prepared:
    """Features and labels of ``source`` as the experiment's config declares them."""
    return prepare(
        source.candles,
        config.features,
        config.labels,
        config.costs,
        source.timeframe,
        progress,
        source.calendar,
    )


def overfitting_stats(evaluation: Evaluation, splits: int = 10) -> dict[str, float]:
    """DSR of the traded strategy, deflated by every choice the per-fold tuning makes (each
    candidate gate × side set) with the variance of the candidate gates' Sharpe ratios, and PBO
    via CSCV over the candidate gates; all OOS returns through the managed engine."""
    grid = evaluation.candidate_returns.to_numpy()
    net = evaluation.returns.to_numpy()
    trials = grid.shape[1] * len(SIDE_SETS)
    out = {"dsr": float("nan"), "pbo": float("nan"), "trials": float(trials)}
    if grid.shape[1] < 2:
        return out
    sd = grid.std(axis=0, ddof=1)
    sharpes = np.divide(grid.mean(axis=0), sd, out=np.zeros(grid.shape[1]), where=sd > 0)
    if net.size > 2:
        out["dsr"] = deflated_sharpe(net, trials, float(np.var(sharpes, ddof=1)))
    if grid.shape[0] >= 2 * splits:
        out["pbo"] = pbo_cscv(grid, splits).pbo
    return out


def record(run: Run, config: ExperimentConfig, prepared: Prepared, source: Source) -> None:
    """Config, data checksum, feature-spec hash, code version and seed of a run."""
    run.log_config(config.model_dump(mode="json"))
    run.set_tags(
        {
            "dataset": source.name,
            "data_checksum": prepared.data_checksum,
            "feature_spec_hash": prepared.spec_hash,
            "label": prepared.label_name,
            "git_sha": git_sha(),
            "seed": config.models.seed,
            "model": config.models.kind,
        }
    )


def run_evaluate(
    source: Source, config: ExperimentConfig, data_dir: Path, progress: Progress | None = None
) -> tuple[Evaluation, dict[str, float], str | None]:
    """Walk-forward evaluation with overfitting statistics; returns the MLflow run id."""
    prepared = prepare_source(source, config)
    context = config.context(source.symbol, source.timeframe, source.calendar)
    evaluation = evaluate(prepared, config.models, config.validation, context, progress)
    stats = overfitting_stats(evaluation)
    run = start_run(config.tracking, data_dir, f"evaluate {config.models.kind} {source.name}")
    if run is None:
        return evaluation, stats, None
    with run:
        record(run, config, prepared, source)
        run.log_metrics(evaluation.metrics | stats)
        run.log_frame("folds.csv", evaluation.folds)
        run.log_frame("predictions.csv", evaluation.predictions)
        run.log_frame("reliability.csv", evaluation.reliability)
    return evaluation, stats, run.run_id


def _window(index: pd.Index, rows: np.ndarray) -> tuple[str, str]:
    return (str(index[rows[0]].isoformat()), str(index[rows[-1]].isoformat()))


def tune_on_calibration(
    prepared: Prepared,
    fold: Fold,
    calibration_proba: np.ndarray,
    context: DecisionContext,
) -> SymbolThresholds:
    """The decision (EV margin, sides) tuned on ``fold.calibrate`` only (the slice after the
    model's training rows) from the fitted chain's calibrated probabilities there."""
    rows = fold.calibrate
    if rows.size == 0:
        raise ConfigError("tuning the decision needs a calibration slice")
    index = prepared.X.index[rows]
    p_up, p_down = direction_probabilities(calibration_proba, prepared.classes)
    down = None if p_down is None else pd.Series(p_down, index)
    tuned = tune_decision(prepared.candles, pd.Series(p_up, index), down, context)
    return SymbolThresholds(
        symbol=str(context.symbol),
        timeframe=str(context.timeframe),
        min_trades=context.signals.min_trades,
        window=_window(prepared.X.index, rows),
        tuned=tuned,
    )


def train_bundle(
    prepared: Prepared,
    config: ExperimentConfig,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> ModelBundle:
    """Fit the deployable chain on all rows (the last slice calibrates) and describe it; with
    ``symbol`` and ``timeframe``, tune the decision for them on that slice."""
    fold = final_fold(prepared, config.validation)
    predictor, calibration_proba = fit_chain(prepared, fold, config.models)
    thresholds = None
    if symbol and timeframe:
        context = config.context(symbol, timeframe)
        hmm = find_agent(predictor, HMMRegimeModel)
        if context.signals.regime_overrides and hmm is not None:
            # the chain's own HMM agent labels the calibration bars, as it will the traded ones
            context = replace(context, regimes=regime_source(context.regime, predictor))
        tuned = tune_on_calibration(prepared, fold, calibration_proba, context)
        thresholds = tuned.model_dump(mode="json")
    info = BundleInfo(
        feature_spec_hash=prepared.spec_hash,
        feature_columns=list(predictor.feature_names),
        label=config.labels.model_dump(mode="json"),
        label_name=prepared.label_name,
        horizon=prepared.horizon,
        model=config.models.model_dump(mode="json") | {"features": _specs(config)},
        train_window=_window(prepared.X.index, fold.train),
        calibration_window=_window(prepared.X.index, fold.calibrate),
        data_checksum=prepared.data_checksum,
        classes=[float(c) for c in predictor.classes],
        signal_thresholds=thresholds,
        reference=drift_reference(
            prepared.X.iloc[fold.train],
            direction_probabilities(calibration_proba, predictor.classes)[0],
        ),
    )
    return ModelBundle(predictor, info)


def _specs(config: ExperimentConfig) -> list[dict[str, Any]]:
    return canonical_specs(config.features.specs())


def _threshold_metrics(bundle: ModelBundle) -> dict[str, float]:
    """The tuned decision as metrics (no decision: NaN margin, both sides off)."""
    tuned = bundle.info.thresholds()
    if tuned is None:
        return {}
    t = tuned.tuned
    return {
        "signal_min_ev": math.nan if t.min_ev is None else t.min_ev,
        "signal_allow_long": float(t.trades_anything and t.allow_long),
        "signal_allow_short": float(t.trades_anything and t.allow_short),
        "signal_calibration_net_return": t.net_return,
        "signal_calibration_coverage": t.coverage,
    }


def run_train(
    source: Source,
    config: ExperimentConfig,
    data_dir: Path,
    output: Path | None = None,
    progress: Progress | None = None,
) -> tuple[ModelBundle, Path, str | None]:
    """Train a bundle, save it (default ``<data dir>/models/<kind>-<spec hash>``), track it."""
    prepared = prepare_source(source, config, progress)
    bundle = train_bundle(prepared, config, source.symbol, source.timeframe)
    default = Path(data_dir) / "models" / f"{config.models.kind}-{prepared.spec_hash[:12]}"
    path = save_bundle(bundle, output or default)
    run = start_run(config.tracking, data_dir, f"train {config.models.kind} {source.name}")
    if run is None:
        return bundle, path, None
    with run:
        record(run, config, prepared, source)
        run.log_metrics({"rows": float(len(prepared.y))} | _threshold_metrics(bundle))
        run.log_dir(path, "bundle")
    return bundle, path, run.run_id
