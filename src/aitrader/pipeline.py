"""The end-to-end pipeline behind ``aitrader demo``: walk-forward model → mode → signals → risk →
backtest, on one or more symbols, with nothing fitted on the bars it trades.

Per symbol: the feature set and cost-aware 3-class labels are built, LightGBM is fitted in a
purged walk-forward (calibrated on a slice after each training window, before each test block),
and only its out-of-sample probabilities are traded. The portfolio backtest covers the
out-of-sample period alone, through the risk-managed engine path, next to buy-and-hold and an
SMA crossover run with the same costs.
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
from aitrader.labels import LabelConfig
from aitrader.models.config import LightGBMParams, ModelConfig
from aitrader.strategy.modes import (
    ModeChoice,
    candles_for_modes,
    mode_risk_config,
    mode_signal_config,
    regime_labels,
    select_mode,
)
from aitrader.strategy.signals import SignalInputs, Signals, generate
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import Evaluation, evaluate
from aitrader.validation.walkforward import prepare

Progress = Callable[[int, int], None]
STATS_WINDOW = 2000  # bars of realised returns behind the EV gate's average win / loss


@dataclass(frozen=True)
class PipelineOptions:
    """How big a run is: ``quick`` trades the last ``quick_bars`` bars with a smaller model."""

    quick: bool = False
    quick_bars: int = 14_000
    timeframe: str = "1h"
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
    signals: Signals
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
    """Walk-forward probabilities for one symbol, turned into target positions."""
    if options.quick:
        candles = candles.iloc[-options.quick_bars :]
    labels = LabelConfig(kind="direction3", horizon=1)
    prepared = prepare(candles, settings.features, labels, settings.costs, options.timeframe)
    evaluation = evaluate(prepared, options.model(), options.validation(), settings.costs, progress)
    mode = select_mode(
        candles_for_modes(candles, options.timeframe, settings.modes),
        settings.modes,
        settings.costs,
    )
    chosen = settings.modes.modes.get(mode.mode)
    signal_cfg = (
        settings.signals if chosen is None else mode_signal_config(settings.signals, chosen)
    )
    oos = evaluation.predictions.reindex(candles.index)
    win, loss = _win_loss(candles["close"], settings.costs.round_trip)
    inputs = SignalInputs(
        p_up=oos["p_1"].to_numpy(),
        p_down=oos["p_-1"].to_numpy(),
        avg_win=win,
        avg_loss=loss,
        regimes=regime_labels(candles, settings.modes.regime),
    )
    signals = generate(inputs, signal_cfg, settings.costs, symbol, options.timeframe)
    top = max(band.multiple for band in signal_cfg.bands)
    target = pd.Series(signals.target / top, index=candles.index)
    target[oos["p_1"].isna().to_numpy()] = np.nan
    return SymbolRun(symbol, candles, evaluation, mode, signals, target)


def _win_loss(close: pd.Series, band: float) -> tuple[np.ndarray, np.ndarray]:
    """Causal average win (mean return when it beat the cost band) and average loss (mean
    shortfall otherwise) over the last ``STATS_WINDOW`` realised bar returns."""
    r = close.pct_change()
    wins = r.where(r > band)
    losses = (-r).clip(lower=0.0).where(r <= band)
    rolling = {"window": STATS_WINDOW, "min_periods": 200}
    return (
        wins.rolling(**rolling).mean().to_numpy(),
        losses.rolling(**rolling).mean().to_numpy(),
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
    chosen = settings.modes.modes.get(runs[0].mode.mode)
    risk = settings.risk if chosen is None else mode_risk_config(settings.risk, chosen)
    backtest = run_managed_backtest(
        data,
        targets,
        stops=AtrStop(period=settings.plans.atr_period, multiple=settings.plans.stop_atr),
        broker_config=BrokerConfig.from_costs(settings.costs),
        risk=risk,
        options=RunOptions(timeframe=options.timeframe, name=options.name),
    )
    return PipelineResult(runs, backtest, start)
