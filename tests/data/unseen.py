"""Train a bundle on the first bars of a candle series and trade the rest through the engine."""

from __future__ import annotations

import pandas as pd

from aitrader.config import Settings
from aitrader.engine.backtest import RunOptions
from aitrader.engine.managed import ManagedResult, run_managed_backtest
from aitrader.models.registry import ModelBundle
from aitrader.strategy.bundle import bundle_targets
from aitrader.strategy.edge import plan_stop
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare


def train_then_trade(
    candles: pd.DataFrame, seen: int, experiment: ExperimentConfig
) -> tuple[ModelBundle, pd.Series, ManagedResult]:
    """``(bundle trained on the first seen bars, its targets on the rest, their backtest)``."""
    head, unseen = candles.iloc[:seen], candles.iloc[seen:]
    prepared = prepare(head, experiment.features, experiment.labels, experiment.costs, "1h")
    bundle = train_bundle(prepared, experiment, "SYN/USD", "1h")
    settings = Settings(features=experiment.features)
    targets = bundle_targets("SYN/USD", candles, bundle, settings, "1h")
    fraction = targets.fraction.loc[unseen.index]
    result = run_managed_backtest(
        unseen,
        fraction.to_numpy(),
        stops=plan_stop(settings.plans),
        options=RunOptions(timeframe="1h", benchmarks=False),
    )
    return bundle, fraction, result
