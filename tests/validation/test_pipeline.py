"""The pipeline fits everything on the training side only, and every scheme runs end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig, FeaturesConfig, Settings
from aitrader.errors import ConfigError
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.gbm import LightGBMParams
from aitrader.strategy.config import ModesConfig, RegimeConfig
from aitrader.strategy.edge import COVERAGES
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.research import PipelineOptions, research
from aitrader.validation.splits import walk_forward
from aitrader.validation.walkforward import Prepared, final_fold, fit_predictor, prepare, run_fold

Factory = Callable[..., pd.DataFrame]
SPECS = [FeatureSpec(name="rsi"), FeatureSpec(name="roc"), FeatureSpec(name="zscore")]
MODEL = ModelConfig(lightgbm=LightGBMParams(n_estimators=40, subsample=0.7))


@pytest.fixture()
def prepared(make_candles: Factory) -> Prepared:
    labels = LabelConfig(kind="direction3", horizon=2)
    return prepare(make_candles(3000, seed=9), SPECS, labels, CostsConfig())


def test_future_rows_cannot_change_a_fold(prepared: Prepared) -> None:
    """Scrambling the labels and features of the test block and everything after it leaves the
    fold's out-of-sample and calibration probabilities bit-for-bit unchanged."""
    fold = walk_forward(prepared.windows, ValidationConfig(min_train=1500, test_size=500), 2)[0]
    before = run_fold(prepared, fold, MODEL)
    rng = np.random.default_rng(0)
    y, X = prepared.y.copy(), prepared.X.copy()
    future = np.arange(fold.test[0], len(y))
    y[future] = rng.permutation(y[future])
    X.iloc[fold.test[-1] + 1 :] = rng.normal(size=(len(y) - fold.test[-1] - 1, X.shape[1]))
    after = run_fold(dataclasses.replace(prepared, y=y, X=X), fold, MODEL)
    np.testing.assert_array_equal(before.climatology, after.climatology)
    np.testing.assert_array_equal(before.calibration_proba, after.calibration_proba)
    np.testing.assert_array_equal(before.proba, after.proba)


def test_scaler_and_calibrator_see_only_their_rows(prepared: Prepared) -> None:
    fold = walk_forward(prepared.windows, ValidationConfig(min_train=1500, test_size=500), 2)[0]
    chain = fit_predictor(prepared, fold, MODEL)
    assert chain.scaler is not None
    expected = np.nanmedian(prepared.X.iloc[fold.train].to_numpy(), axis=0)
    np.testing.assert_allclose(chain.scaler.center_, expected)
    assert chain.calibrator is not None


@pytest.mark.parametrize("scheme", ["purged_kfold", "cpcv"])
def test_other_schemes_run(prepared: Prepared, scheme: str) -> None:
    config = ValidationConfig(scheme=scheme, n_splits=4, cpcv_groups=5, cpcv_test_groups=2)  # type: ignore[arg-type]
    result = evaluate(prepared, ModelConfig(kind="logistic"), config)
    assert 0.2 < result.metrics["accuracy"] < 0.6
    assert len(result.predictions) == len(prepared.y)  # one full path / every row once
    if scheme == "cpcv":
        assert result.metrics["folds"] == 10 and "path_sharpe_mean" in result.metrics
    assert result.reliability["count"].sum() >= len(prepared.y)


def test_outputs_line_up(prepared: Prepared) -> None:
    config = ValidationConfig(min_train=1500, test_size=500)
    result = evaluate(prepared, ModelConfig(kind="majority"), config)
    frame = result.predictions
    assert frame.index.is_monotonic_increasing and len(frame) == len(prepared.y) - 1500
    np.testing.assert_allclose(frame.filter(like="p_").sum(axis=1), 1.0)
    assert list(result.folds["fold"]) == [0, 1, 2]
    assert (result.folds["train_end"] < result.folds["test_start"]).all()
    # every candidate gate's OOS returns come from the engine, one per OOS bar
    assert result.candidate_returns.shape == (len(result.returns), len(COVERAGES))
    assert result.returns.index[0] == frame.index[0] and result.returns.index[-1] == frame.index[-1]


def test_final_fold_calibrates_on_the_last_rows(prepared: Prepared) -> None:
    fold = final_fold(prepared, ValidationConfig(calibration_fraction=0.25))
    n = len(prepared.y)
    assert fold.calibrate[-1] == n - 1 and fold.calibrate.size == round(0.25 * n)
    assert fold.train[-1] == fold.calibrate[0] - 2  # horizon-2 labels purged before it


def test_regression_labels_are_refused(make_candles: Factory) -> None:
    with pytest.raises(ConfigError, match="regression target"):
        prepare(make_candles(500), SPECS, LabelConfig(kind="forward_return"), CostsConfig())


@pytest.mark.slow
def test_parallel_folds_match_serial(prepared: Prepared) -> None:
    serial = ValidationConfig(min_train=1500, test_size=500)
    one = evaluate(prepared, MODEL, serial)
    two = evaluate(prepared, MODEL, serial.model_copy(update={"n_jobs": 2}))
    assert one.metrics == two.metrics
    pd.testing.assert_frame_equal(one.predictions, two.predictions)


def test_the_demo_chooses_its_mode_without_the_bars_it_trades(make_candles: Factory) -> None:
    """A different future (every bar from the first out-of-sample one on) leaves the mode
    choice and its scores unchanged: they are computed on the bars before it."""
    candles = make_candles(8600, seed=3)
    settings = Settings(features=FeaturesConfig(preset="none", extra=tuple(SPECS)))
    options = PipelineOptions(quick=True)
    run = research("SYN", candles, settings, options)
    later = candles.index >= run.evaluation.predictions.index.min()
    changed = candles.copy()
    trend = np.linspace(1.0, 3.0, int(later.sum()))[:, None]
    changed.loc[later, ["open", "high", "low", "close"]] *= trend
    assert research("SYN", changed, settings, options).mode == run.mode


def test_the_demo_maps_the_volatility_tier_to_a_mode(make_candles: Factory) -> None:
    """``modes.regime.mode_by_tier``: the tier of the last bar before the first out-of-sample
    one picks the mode, whatever the scores say."""
    candles = make_candles(8600, seed=3)
    every = {"low": "intraday", "normal": "intraday", "high": "intraday"}
    modes = ModesConfig(regime=RegimeConfig(mode_by_tier=every))
    settings = Settings(features=FeaturesConfig(preset="none", extra=tuple(SPECS)), modes=modes)
    run = research("SYN", candles, settings, PipelineOptions(quick=True))
    assert run.mode.mode == "intraday" and "mode_by_tier" in run.mode.reason
