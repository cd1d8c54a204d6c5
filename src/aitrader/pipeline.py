"""The end-to-end pipeline behind ``aitrader demo``: walk-forward model → mode → signals → risk →
backtest, on one or more symbols, with nothing fitted on the bars it trades.

Per symbol: the feature set and cost-aware 3-class labels are built, LightGBM is fitted in a
purged walk-forward (calibrated, and its decision tuned, on a slice after each training window,
before each test block), and only its out-of-sample probabilities are traded. The portfolio
backtest covers the out-of-sample period alone, through the risk-managed engine path, next to
buy-and-hold and an SMA crossover run with the same costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.engine.backtest import RunOptions
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import AtrStop, ManagedResult, run_managed_backtest
from aitrader.errors import DataError
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeatureSpec, spec_hash
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.gbm import LightGBMParams
from aitrader.models.registry import BundleError, ModelBundle, apply_thresholds
from aitrader.risk.config import RiskConfig
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.edge import (
    STATS_WINDOW as STATS_WINDOW,  # re-exported: the live feed's history
)
from aitrader.strategy.edge import (
    DecisionContext,
    atr_stop_loss,
    plan_stop,
    win_loss,
)
from aitrader.strategy.edge import win_loss_at as win_loss_at  # re-exported
from aitrader.strategy.modes import (
    ModeChoice,
    candles_for_modes,
    mode_risk_config,
    mode_signal_config,
    regime_labels,
    select_mode,
)
from aitrader.strategy.signals import (
    SignalInputs,
    Signals,
    direction_probabilities,
    signal_targets,
)
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import Evaluation, evaluate
from aitrader.validation.walkforward import prepare

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PipelineOptions:
    """How big a run is: ``quick`` trades the last ``quick_bars`` bars with a smaller model."""

    quick: bool = False
    quick_bars: int = 14_000
    timeframe: str = "1h"
    calendar: str = "crypto"  # "equity" annualises with 252 sessions
    name: str = "LightGBM walk-forward"

    def model(self) -> ModelConfig:
        trees = 80 if self.quick else 200
        return ModelConfig(kind="lightgbm", n_jobs=1, lightgbm=LightGBMParams(n_estimators=trees))

    def validation(self) -> ValidationConfig:
        if self.quick:
            return ValidationConfig(min_train=6000, test_size=2000)
        return ValidationConfig(min_train=8760, test_size=4380)


@dataclass(frozen=True)
class SymbolRun:
    """What the research step produced for one symbol."""

    symbol: str
    candles: pd.DataFrame
    evaluation: Evaluation
    mode: ModeChoice
    target: pd.Series  # fraction of equity, NaN before the first out-of-sample bar


@dataclass(frozen=True)
class PipelineResult:
    runs: list[SymbolRun]
    backtest: ManagedResult
    start: pd.Timestamp


def research(
    symbol: str,
    candles: pd.DataFrame,
    settings: Settings,
    options: PipelineOptions,
    progress: Progress | None = None,
) -> SymbolRun:
    """Walk-forward probabilities for one symbol, turned into target positions by each fold's
    decision (tuned on that fold's calibration slice): the targets ``evaluate`` scores."""
    if options.quick:
        candles = candles.iloc[-options.quick_bars :]
    labels = LabelConfig(kind="direction3", horizon=1)
    prepared = prepare(
        candles,
        settings.features,
        labels,
        settings.costs,
        options.timeframe,
        None,
        options.calendar,
    )
    first = prepared.X.index[min(options.validation().min_train, len(prepared.X) - 1)]
    # the mode is chosen on the bars before the first out-of-sample one: never on traded bars
    seen = candles.loc[candles.index < first]
    mode = select_mode(
        candles_for_modes(seen, options.timeframe, settings.modes), settings.modes, settings.costs
    )
    context = DecisionContext(
        signals=signal_config(settings, mode.mode),
        costs=settings.costs,
        stop=pipeline_stop(settings),
        risk=_mode_risk(settings, mode.mode),
        symbol=symbol,
        timeframe=options.timeframe,
        regime=settings.modes.regime,
    )
    evaluation = evaluate(prepared, options.model(), options.validation(), context, progress)
    target = evaluation.predictions["target"].reindex(candles.index)
    return SymbolRun(symbol, candles, evaluation, mode, target)


def _mode_risk(settings: Settings, mode: str | None) -> RiskConfig:
    chosen = None if mode is None else settings.modes.modes.get(mode)
    return settings.risk if chosen is None else mode_risk_config(settings.risk, chosen)


def signal_config(settings: Settings, mode: str | None = None) -> SignalConfig:
    """The signal settings a run trades with: ``settings.signals`` with the chosen mode's
    thresholds, EV margin and bands applied (none when ``mode`` is None or not configured)."""
    chosen = None if mode is None else settings.modes.modes.get(mode)
    return settings.signals if chosen is None else mode_signal_config(settings.signals, chosen)


def pipeline_stop(settings: Settings) -> AtrStop:
    """The protective stop every pipeline position carries (``plans.stop_atr`` × ATR)."""
    return plan_stop(settings.plans)


def bundle_specs(bundle: ModelBundle) -> list[FeatureSpec]:
    """The feature specs a model bundle was trained on (BundleError when it does not list them,
    or when they do not hash to the bundle's feature-spec hash)."""
    specs = bundle.info.model.get("features")
    if not specs:
        raise BundleError("the model bundle does not list its feature specs")
    features = [FeatureSpec(**spec) for spec in specs]
    bundle.check_features(spec_hash(features))
    return features


def bundle_signal_config(
    bundle: ModelBundle, settings: Settings, symbol: str, timeframe: str, mode: str | None = None
) -> SignalConfig:
    """:func:`signal_config` with the bundle's tuned thresholds when they are for this market."""
    return apply_thresholds(bundle.info, signal_config(settings, mode), symbol, timeframe)[0]


@dataclass(frozen=True)
class BundleTargets:
    """A model bundle's targets over a whole candle series (the batch reference of live)."""

    fraction: pd.Series  # NaN where the model has no probability (warm-up, undefined features)
    stop_loss: pd.Series  # AtrStop distance, fraction of the close
    signals: Signals


def bundle_targets(
    symbol: str,
    candles: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    timeframe: str,
    mode: str | None = None,
) -> BundleTargets:
    """Target fractions and stops of a trained bundle on ``candles`` in one batch: features →
    calibrated probabilities → :func:`signal_targets` (EV gate on the rolling win / loss) →
    :func:`atr_stop_loss`. The model strategy (``aitrader.strategies.model``) gives the same
    bar by bar."""
    matrix = build_features(candles, bundle_specs(bundle), timeframe=timeframe)
    rows = matrix.frame[np.isfinite(matrix.frame.to_numpy()).all(axis=1)]
    proba = bundle.predictor.predict_proba(rows)
    p_up, p_down = direction_probabilities(proba, bundle.predictor.classes)
    up = pd.Series(p_up, index=rows.index).reindex(candles.index).to_numpy()
    down = None
    if p_down is not None:
        down = pd.Series(p_down, index=rows.index).reindex(candles.index).to_numpy()
    win, loss = win_loss(candles["close"], settings.costs.round_trip)
    inputs = SignalInputs(up, win, loss, down, regime_labels(candles, settings.modes.regime))
    config = bundle_signal_config(bundle, settings, symbol, timeframe, mode)
    signals, fraction = signal_targets(inputs, config, settings.costs, symbol, timeframe)
    h, lo, c = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    stop = atr_stop_loss(h, lo, c, pipeline_stop(settings))
    return BundleTargets(
        pd.Series(fraction, index=candles.index, name="fraction"),
        pd.Series(stop, index=candles.index, name="stop_loss"),
        signals,
    )


def portfolio_backtest(
    runs: list[SymbolRun], settings: Settings, options: PipelineOptions
) -> PipelineResult:
    """Trade every symbol's out-of-sample targets together through the risk manager.

    The portfolio runs on the bars all symbols share, from the first bar every symbol has an
    out-of-sample probability; each symbol may use 1/N of equity at full conviction.
    """
    starts = [run.target.first_valid_index() for run in runs]
    if any(s is None for s in starts):
        raise DataError("no out-of-sample predictions: the data is too short for walk-forward")
    start = max(pd.Timestamp(s) for s in starts)
    index = runs[0].candles.index
    for run in runs[1:]:
        index = index.intersection(run.candles.index)
    index = index[index >= start]
    data = {run.symbol: run.candles.loc[index] for run in runs}
    targets = np.column_stack([run.target.loc[index].to_numpy() / len(runs) for run in runs])
    risk = _mode_risk(settings, runs[0].mode.mode)
    backtest = run_managed_backtest(
        data,
        targets,
        stops=pipeline_stop(settings),
        broker_config=BrokerConfig.from_costs(settings.costs),
        risk=risk,
        options=RunOptions(
            timeframe=options.timeframe, calendar=options.calendar, name=options.name
        ),
    )
    return PipelineResult(runs, backtest, start)
