"""The decision tuned at training time: calibration rows only, stored in the bundle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig, Settings, load_settings
from aitrader.errors import ConfigError
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.registry import apply_thresholds, load_bundle, save_bundle
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.edge import tune_decision
from aitrader.strategy.signals import SymbolThresholds, direction_probabilities, resolve
from aitrader.validation.experiment import ExperimentConfig, train_bundle, tune_on_calibration
from aitrader.validation.walkforward import Prepared, final_fold, fit_chain, prepare

SPECS = [FeatureSpec(name="roc", params={"period": 2}), FeatureSpec(name="rsi")]
SYMBOL, TIMEFRAME = "BTC/USD", "1h"


def synthetic_candles(n: int, seed: int, phi: float) -> pd.DataFrame:
    """Hourly candles whose returns have AR(1) momentum ``phi``: a weak, real edge."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, 0.006, n)
    returns = np.empty(n)
    returns[0] = eps[0]
    for i in range(1, n):
        returns[i] = phi * returns[i - 1] + eps[i]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1e6,
        },
        index=index,
    )


def config(label: str = "binary", **signals: int) -> ExperimentConfig:
    return ExperimentConfig(
        labels=LabelConfig(kind=label),
        models=ModelConfig(kind="logistic"),
        signals=SignalConfig(**signals),
    )


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    candles = synthetic_candles(3000, seed=11, phi=0.3)
    return prepare(candles, SPECS, LabelConfig(kind="binary"), CostsConfig())


def test_the_decision_comes_from_the_calibration_rows_only(prepared: Prepared) -> None:
    cfg = config()
    fold = final_fold(prepared, cfg.validation)
    assert fold.train.max() < fold.calibrate.min()
    predictor, proba = fit_chain(prepared, fold, cfg.models)
    context = cfg.context(SYMBOL, TIMEFRAME)

    def tune(data: Prepared, p: np.ndarray = proba) -> SymbolThresholds:
        return tune_on_calibration(data, fold, p, context)

    base = tune(prepared)
    assert base.window == (
        prepared.X.index[fold.calibrate[0]].isoformat(),
        prepared.X.index[fold.calibrate[-1]].isoformat(),
    )
    # bars after the calibration slice, and the training rows' labels, change nothing
    later = prepared.candles.index > prepared.X.index[fold.calibrate[-1]]
    candles = prepared.candles.copy()
    candles.loc[later, ["open", "high", "low", "close"]] *= 3.0
    y = prepared.y.copy()
    y[fold.train] = prepared.classes[-1]
    assert tune(replace(prepared, y=y, candles=candles)) == base
    # other calibration probabilities do
    assert tune(prepared, np.full_like(proba, 0.5)) != base

    # the same decision, computed by hand from the calibration slice
    rows = fold.calibrate
    p_up, p_down = direction_probabilities(proba, prepared.classes)
    index = prepared.X.index[rows]
    by_hand = tune_decision(prepared.candles, pd.Series(p_up, index), None, context)
    assert base.tuned == by_hand and p_down is None
    np.testing.assert_allclose(proba, predictor.predict_proba(prepared.X.iloc[rows]))


def test_train_bundle_stores_it_and_the_round_trip_keeps_it(
    prepared: Prepared, tmp_path: Path
) -> None:
    bundle = train_bundle(prepared, config(), SYMBOL, TIMEFRAME)
    stored = bundle.info.thresholds()
    assert stored is not None and stored.key == "BTC/USD:1h"
    assert stored.window == bundle.info.calibration_window and stored.min_trades == 30
    assert stored.reached  # the planted momentum pays for its costs on the calibration slice
    fold = final_fold(prepared, config().validation)
    _, proba = fit_chain(prepared, fold, config().models)
    assert stored == tune_on_calibration(prepared, fold, proba, config().context(SYMBOL, "1h"))

    loaded = load_bundle(save_bundle(bundle, tmp_path / "b"), spec_hash=prepared.spec_hash)
    assert loaded.info == bundle.info and loaded.info.thresholds() == stored
    signal, note = apply_thresholds(loaded.info, SignalConfig(), SYMBOL, TIMEFRAME)
    params = resolve(signal, SYMBOL, TIMEFRAME)
    assert params.min_ev == stored.tuned.min_ev
    assert params.allow_long == stored.tuned.allow_long
    assert note.startswith("tuned thresholds in use: BTC/USD:1h")
    other, note = apply_thresholds(loaded.info, SignalConfig(), "ETH/USD", TIMEFRAME)
    assert resolve(other, "ETH/USD", TIMEFRAME) == resolve(SignalConfig(), "ETH/USD", TIMEFRAME)
    assert "tuned thresholds are for BTC/USD:1h" in note


def test_a_decision_that_never_pays_is_stored_as_such(prepared: Prepared, tmp_path: Path) -> None:
    bundle = train_bundle(prepared, config(min_trades=100_000), SYMBOL, TIMEFRAME)
    assert bundle.info.signal_thresholds is not None
    tuned = bundle.info.signal_thresholds["tuned"]
    assert tuned["min_ev"] is None and tuned["notes"][0].startswith("long and short disabled")
    loaded = load_bundle(save_bundle(bundle, tmp_path / "b")).info
    signal, note = apply_thresholds(loaded, SignalConfig(), SYMBOL, TIMEFRAME)
    params = resolve(signal, SYMBOL, TIMEFRAME)
    assert not params.allow_long and not params.allow_short
    assert "no trades" in note and "to change" in note


def test_signed_labels_weigh_up_against_down_net_of_the_neutral_class() -> None:
    candles = synthetic_candles(3000, seed=5, phi=0.3)
    data = prepare(candles, SPECS, LabelConfig(kind="direction3"), CostsConfig())
    cfg = config("direction3")
    bundle = train_bundle(data, cfg, SYMBOL, TIMEFRAME)
    stored = bundle.info.thresholds()
    assert stored is not None and list(data.classes) == [-1.0, 0.0, 1.0]
    rows = final_fold(data, cfg.validation).calibrate
    proba = bundle.predictor.predict_proba(data.X.iloc[rows])
    index = data.X.index[rows]
    up, down = pd.Series(proba[:, -1], index), pd.Series(proba[:, 0], index)
    assert stored.tuned == tune_decision(data.candles, up, down, cfg.context(SYMBOL, "1h"))


def test_without_symbol_nothing_is_tuned(prepared: Prepared) -> None:
    info = train_bundle(prepared, config()).info
    assert info.signal_thresholds is None and info.thresholds() is None
    signal, note = apply_thresholds(info, SignalConfig(), SYMBOL, TIMEFRAME)
    assert signal == SignalConfig() and "no tuned thresholds" in note


def test_settings_sections_reach_the_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRADER__LABELS__KIND", "binary")
    monkeypatch.setenv("AITRADER__LABELS__HORIZON", "3")
    monkeypatch.setenv("AITRADER__SIGNALS__MIN_TRADES", "40")
    monkeypatch.setenv("AITRADER__PLANS__STOP_ATR", "2.5")
    experiment = ExperimentConfig.from_settings(Settings())
    assert experiment.labels == LabelConfig(kind="binary", horizon=3)
    assert experiment.signals.min_trades == 40
    assert experiment.context().stop.multiple == 2.5
    monkeypatch.delenv("AITRADER__LABELS__KIND")
    monkeypatch.delenv("AITRADER__LABELS__HORIZON")
    assert ExperimentConfig.from_settings(Settings()).labels == LabelConfig()


def test_label_section_of_the_config_file_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "aitrader.yaml"
    path.write_text("labels:\n  kind: triple_barrier\n  horizon: 12\n  take_profit: 3.0\n")
    assert load_settings(path).labels == LabelConfig(
        kind="triple_barrier", horizon=12, take_profit=3.0
    )
    path.write_text("labels:\n  kind: binary\n  take_profit: 3.0\n")
    with pytest.raises(ConfigError, match=r"labels\.take_profit"):
        load_settings(path)
