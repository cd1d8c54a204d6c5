"""The research pipeline behind ``aitrader demo``: walk-forward model → mode → signals → risk →
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
from aitrader.engine.managed import ManagedResult, run_managed_backtest
from aitrader.errors import DataError
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.gbm import LightGBMParams
from aitrader.risk.config import RiskConfig
from aitrader.strategy.bundle import signal_config
from aitrader.strategy.edge import DecisionContext, garch_stop_multiple, plan_stop
from aitrader.strategy.modes import (
    ModeChoice,
    candles_for_modes,
    mode_risk_config,
    select_mode,
)
from aitrader.strategy.regimes import regime_source
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
    regime = None
    if settings.modes.regime.mode_by_tier:  # the tier of the last seen bar picks the mode
        regime = regime_source(settings.modes.regime, None, seen).last(seen)
    frames = candles_for_modes(seen, options.timeframe, settings.modes)
    mode = select_mode(frames, settings.modes, settings.costs, regime)
    context = DecisionContext(
        signals=signal_config(settings, mode.mode),
        costs=settings.costs,
        stop=plan_stop(settings.plans),
        risk=_mode_risk(settings, mode.mode),
        symbol=symbol,
        timeframe=options.timeframe,
        regime=settings.modes.regime,
        garch_stop=garch_stop_multiple(settings.plans),
    )
    evaluation = evaluate(prepared, options.model(), options.validation(), context, progress)
    target = evaluation.predictions["target"].reindex(candles.index)
    return SymbolRun(symbol, candles, evaluation, mode, target)


def _mode_risk(settings: Settings, mode: str | None) -> RiskConfig:
    chosen = None if mode is None else settings.modes.modes.get(mode)
    return settings.risk if chosen is None else mode_risk_config(settings.risk, chosen)


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
        stops=plan_stop(settings.plans),
        broker_config=BrokerConfig.from_costs(settings.costs),
        risk=risk,
        options=RunOptions(
            timeframe=options.timeframe, calendar=options.calendar, name=options.name
        ),
    )
    return PipelineResult(runs, backtest, start)
