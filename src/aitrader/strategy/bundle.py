"""A trained model bundle as targets: its feature specs, the signal settings it trades with
(the chosen mode's, with the bundle's tuned thresholds for this market) and
:func:`bundle_targets`, the whole-series form of the model strategy
(:mod:`aitrader.strategies.model`), which gives the same bar by bar (``aitrader strategy
check``). The bundle's agents take part: the HMM regime agent's volatility tier labels the
regimes (``modes.regime.source: hmm``), the GARCH volatility agent's predicted range places the
stop (``plans.stop_method: garch``) and its σ forecast goes with every target (``vol``, what
``risk.sizing.method: vol_target`` divides by)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeatureSpec, spec_hash
from aitrader.models.garch import GarchAgentModel
from aitrader.models.registry import BundleError, ModelBundle, apply_thresholds
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.edge import model_stops, win_loss
from aitrader.strategy.modes import mode_signal_config
from aitrader.strategy.regimes import RegimeSource, find_agent, garch_outputs, regime_source
from aitrader.strategy.signals import (
    SignalInputs,
    Signals,
    direction_probabilities,
    signal_targets,
)


def signal_config(settings: Settings, mode: str | None = None) -> SignalConfig:
    """The signal settings a run trades with: ``settings.signals`` with the chosen mode's
    thresholds, EV margin and bands applied (none when ``mode`` is None or not configured)."""
    chosen = None if mode is None else settings.modes.modes.get(mode)
    return settings.signals if chosen is None else mode_signal_config(settings.signals, chosen)


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
    stop_loss: pd.Series  # stop distance (model_stops), fraction of the close
    signals: Signals
    vol: pd.Series  # the GARCH agent's σ forecast (NaN: no such agent, or its warm-up)


def bundle_targets(
    symbol: str,
    candles: pd.DataFrame,
    bundle: ModelBundle,
    settings: Settings,
    timeframe: str,
    mode: str | None = None,
    regimes: RegimeSource | None = None,
) -> BundleTargets:
    """Target fractions and stops of a trained bundle on ``candles`` in one batch: features →
    calibrated probabilities → :func:`signal_targets` (EV gate on the rolling win / loss;
    regime labels from ``regimes``, by default :func:`regime_source` of the bundle) →
    :func:`model_stops`. The model strategy (``aitrader.strategies.model``) gives the same
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
    config = bundle_signal_config(bundle, settings, symbol, timeframe, mode)
    labels = None
    if config.regime_overrides:  # labels only change the parameters through overrides
        source = regimes or regime_source(settings.modes.regime, bundle)
        labels = source.labels(candles).to_numpy()
    inputs = SignalInputs(up, win, loss, down, labels)
    signals, fraction = signal_targets(inputs, config, settings.costs, symbol, timeframe)
    garch = find_agent(bundle, GarchAgentModel)
    table = None if garch is None else garch_outputs(garch, candles)  # run once: stop and σ
    stop = model_stops(candles, settings.plans, garch, table)
    vol = np.full(len(candles), np.nan) if table is None else table["garch_sigma"].to_numpy()
    return BundleTargets(
        pd.Series(fraction, index=candles.index, name="fraction"),
        pd.Series(stop, index=candles.index, name="stop_loss"),
        signals,
        pd.Series(vol, index=candles.index, name="vol"),
    )
