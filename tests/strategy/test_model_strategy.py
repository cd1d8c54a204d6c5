"""The model-bundle strategy bar by bar equals its vectorised (batch pipeline) targets.

Fractions and ATR stops bit-identical to ``bundle_targets`` over a replay slice after
training on earlier bars; the feature row equals the batch row exactly in the GARCH column and
to 1e-8 relative elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError, DataError
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.live.ledger import Ledger
from aitrader.models.config import ModelConfig
from aitrader.models.gbm import LightGBMParams
from aitrader.models.registry import ModelBundle, save_bundle
from aitrader.strategies.model import ModelBundleStrategy
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy.base import Environment, Strategy
from aitrader.strategy.bundle import bundle_targets
from aitrader.strategy.config import Band, SignalConfig, SignalOverride
from aitrader.strategy.feed import StrategyFeed
from aitrader.validation.config import ValidationConfig
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare

SYMBOL, TIMEFRAME = "BTC/USD", "1h"
TRAIN, REPLAY = 4000, 400  # bars before the replay (training and history), bars replayed


def _bars(symbol: str, candles: pd.DataFrame) -> Iterator[dict[str, Bar]]:
    for row in candles.itertuples():
        yield {symbol: Bar(symbol, row.Index, row.open, row.high, row.low, row.close, row.volume)}


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return load_sample("BTC-USD-1h")


def feed(
    strategy: Strategy,
    symbols: list[str],
    settings: Settings,
    history: dict[str, pd.DataFrame],
    bundle: ModelBundle | None = None,
) -> StrategyFeed:
    return StrategyFeed(strategy, Environment(tuple(symbols), TIMEFRAME, settings, bundle, history))


def model_feed(
    symbols: list[str], settings: Settings, history: dict[str, pd.DataFrame], bundle: ModelBundle
) -> StrategyFeed:
    return feed(ModelBundleStrategy(), symbols, settings, history, bundle)


# -- model bundle ----------------------------------------------------------------------------

FEATURES = FeaturesConfig(
    preset="none",
    extra=(
        FeatureSpec(name="sma", params={"period": 10, "relative": True}),
        FeatureSpec(name="ema", params={"period": 26, "relative": True}),
        FeatureSpec(name="rsi"),
        FeatureSpec(name="adx"),
        FeatureSpec(name="atr", params={"relative": True}),
        FeatureSpec(name="realized_vol", params={"window": 20}),
        FeatureSpec(name="garch", params={"window": 300, "refit_every": 700}),
        FeatureSpec(name="trend_strength"),
        FeatureSpec(name="rsi", timeframe="x4"),
    ),
)
SIGNALS = SignalConfig(  # loose enough to trade often, with the EV gate and a regime rule in play
    long_threshold=0.36,
    short_threshold=0.36,
    bands=(Band(min_prob=0.36, multiple=1.0), Band(min_prob=0.42, multiple=2.0)),
    min_ev=-0.0012,
    regime_overrides={"trend_high": SignalOverride(allow_short=False)},
)


@pytest.fixture(scope="module")
def candles(btc: pd.DataFrame) -> pd.DataFrame:
    return btc.iloc[-(TRAIN + REPLAY + 1000) :]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(features=FEATURES, signals=SIGNALS)


@pytest.fixture(scope="module")
def bundle(candles: pd.DataFrame, settings: Settings) -> ModelBundle:
    """A small LightGBM chain trained on the bars before the replay only (no tuned thresholds:
    the config's loose ones trade more)."""
    config = ExperimentConfig.from_settings(
        settings,
        models=ModelConfig(n_jobs=1, lightgbm=LightGBMParams(n_estimators=40)),
        validation=ValidationConfig(min_train=1000, test_size=500),
    )
    prepared = prepare(candles.iloc[:TRAIN], config.features, config.labels, config.costs, "1h")
    return train_bundle(prepared, config)


def _replay(feed: StrategyFeed, candles: pd.DataFrame) -> tuple[np.ndarray, ...]:
    rows, fraction, stop = [], [], []
    strategy = feed.strategy
    assert isinstance(strategy, ModelBundleStrategy)
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + REPLAY])):
        out = feed.at(i, bars)
        fraction.append(out.fraction[0])
        stop.append(out.stop_loss[0])
        rows.append(strategy.features(feed.ctx.history(SYMBOL), SYMBOL).to_numpy()[0])
    return np.array(fraction), np.array(stop), np.array(rows)


def test_model_targets_equal_batch_pipeline(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    model = model_feed([SYMBOL], settings, {SYMBOL: candles.iloc[:TRAIN]}, bundle)
    fraction, stop, rows = _replay(model, candles)
    batch = bundle_targets(SYMBOL, candles.iloc[: TRAIN + REPLAY], bundle, settings, TIMEFRAME)
    expected = batch.fraction.to_numpy()[TRAIN:]
    assert np.array_equal(fraction, expected)
    assert np.array_equal(stop, batch.stop_loss.to_numpy()[TRAIN:])
    reasons = np.bincount(batch.signals.reason[TRAIN:], minlength=6)
    assert (fraction > 0).sum() > 20 and (fraction < 0).sum() > 5  # both sides traded
    assert reasons[4] > 0 and reasons[0] > 20  # the EV gate bit on some bars
    # the feature rows: GARCH bit-identical (incremental filter), the rest to rounding
    full = build_features(candles.iloc[: TRAIN + REPLAY], list(FEATURES.specs()), timeframe="1h")
    columns = model.strategy.columns  # type: ignore[attr-defined]
    want = full.frame.loc[candles.index[TRAIN : TRAIN + REPLAY], columns].to_numpy()
    garch = columns.index("garch_vol_300_700")
    assert np.array_equal(rows[:, garch], want[:, garch])
    np.testing.assert_allclose(rows, want, rtol=1e-8, atol=1e-12)


def test_model_targets_divide_by_symbols_and_skip_repeats(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    history = {SYMBOL: candles.iloc[:TRAIN], "ETH/USD": candles.iloc[:TRAIN]}
    pair = model_feed([SYMBOL, "ETH/USD"], settings, history, bundle)
    single = model_feed([SYMBOL], settings, {SYMBOL: candles.iloc[:TRAIN]}, bundle)
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + 60])):
        eth = {"ETH/USD": replace(bars[SYMBOL], symbol="ETH/USD")}
        two, one = pair.at(i, bars | eth), single.at(i, bars)
        again = pair.at(i, bars | eth)  # repeated bar: same answer, state unchanged
        assert np.array_equal(two.fraction, again.fraction, equal_nan=True)
        assert two.fraction[0] == one.fraction[0] / 2
    assert set(pair.strategy.timings) == {"features", "model", "policy"}  # type: ignore[attr-defined]


def test_model_targets_need_the_warm_up_in_history(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    with pytest.raises(DataError, match="history"):
        model_feed([SYMBOL], settings, {SYMBOL: candles.iloc[:20]}, bundle)
    with pytest.raises(DataError, match="no history"):
        model_feed([SYMBOL], settings, {}, bundle)
    with pytest.raises(ConfigError, match="--model"):
        feed(ModelBundleStrategy(), [SYMBOL], settings, {SYMBOL: candles.iloc[:TRAIN]})


def test_observed_bars_keep_the_state_whole(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    history = {SYMBOL: candles.iloc[:TRAIN]}
    always = model_feed([SYMBOL], settings, history, bundle)
    paused = model_feed([SYMBOL], settings, history, bundle)
    sma_always = feed(SmaCross(fast=5, slow=20), [SYMBOL], settings, {})
    sma_paused = feed(SmaCross(fast=5, slow=20), [SYMBOL], settings, {})
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + 40])):
        want, sma_want = always.at(i, bars), sma_always.at(i, bars)
        if 10 <= i < 30:  # paused: bars observed, no decisions asked for
            paused.observe(bars)
            sma_paused.observe(bars)
            continue
        assert np.array_equal(paused.at(i, bars).fraction, want.fraction, equal_nan=True)
        assert np.array_equal(sma_paused.at(i, bars).fraction, sma_want.fraction, equal_nan=True)
    filters = [f.strategy._filters[SYMBOL][0].value for f in (paused, always)]  # type: ignore[attr-defined]
    assert filters[0] == filters[1]


def test_paper_cli_trades_a_model_bundle_bar_by_bar(bundle: ModelBundle, tmp_path: Path) -> None:
    """``aitrader paper --replay ... --model DIR``: the bundle decides each replayed bar from
    the bars before it (out of sample: the replay starts where the bundle's training ended)."""
    directory = save_bundle(bundle, tmp_path / "bundle")
    path = tmp_path / "paper.db"
    config = tmp_path / "aitrader.yaml"
    config.write_text(yaml.safe_dump({"signals": SIGNALS.model_dump(mode="json")}))
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["--config", str(config), "paper", "--replay", "sample:BTC-USD-1h", "--model"]
    args += [str(directory), "--bars", str(REPLAY + 1000), "--max-bars", str(REPLAY)]
    result = CliRunner().invoke(app, [*args, "--ledger", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bars"] == REPLAY and summary["orders"] > 0
    with Ledger(path) as ledger:
        assert len(ledger.equity_curve()) == REPLAY
        assert len(ledger.risk_decisions()) > 0
        decisions = ledger.decisions(10 * REPLAY)
    # every decision on record: its target, the bar's close, latency, probabilities, features
    assert len(decisions) == REPLAY and set(decisions["strategy"]) == {"model"}
    closes = load_sample("BTC-USD-1h")["close"].reindex(pd.DatetimeIndex(decisions["time"]))
    np.testing.assert_array_equal(decisions["price"].to_numpy(), closes.to_numpy())
    assert (decisions["latency_ms"] > 0).all() and decisions["target"].notna().all()
    info = decisions["info"].iloc[-1]
    assert set(info["probabilities"]) == {"down", "flat", "up"}
    assert sum(info["probabilities"].values()) == pytest.approx(1.0)
    assert set(info["features"]) == set(bundle.info.feature_columns)
    assert info["bundle"] == bundle.info.created
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "50000", "--model", str(directory)]
    too_long = CliRunner().invoke(app, args, env=env)
    assert too_long.exit_code == 2 and "bars of history" in too_long.output


def test_strategy_check_proves_the_model_strategy_equal(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    """``strategy check model --model DIR``: bar by bar against the batch pipeline, through
    the same risk-managed backtest (the replay starts where training ended)."""
    from aitrader.engine.config import BrokerConfig
    from aitrader.strategy.run import RunSpec, check_strategy

    spec = RunSpec(BrokerConfig.from_costs(settings.costs), settings.risk, start=TRAIN,
                   bundle=bundle)  # fmt: skip
    data = {SYMBOL: candles.iloc[: TRAIN + REPLAY]}
    report = check_strategy(ModelBundleStrategy, data, settings, spec)
    assert report.difference is None and report.equal
    assert report.bars == REPLAY and report.decisions == REPLAY


def test_backtest_warns_when_it_trades_the_bundles_own_window(
    candles: pd.DataFrame, bundle: ModelBundle, tmp_path: Path
) -> None:
    directory = save_bundle(bundle, tmp_path / "bundle")
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["backtest", "sample:BTC-USD-1h", "--model", str(directory), "--json", "--start"]
    honest = CliRunner().invoke(app, [*args, str(candles.index[TRAIN])], env=env)
    assert honest.exit_code == 0, honest.output
    assert "in-sample" not in honest.stderr
    inside = CliRunner().invoke(app, [*args, str(candles.index[TRAIN - 500])], env=env)
    assert inside.exit_code == 0, inside.output
    assert "the run is in-sample and its results are optimistic" in " ".join(inside.stderr.split())


def test_sequence_model_bar_by_bar_equals_batch(candles: pd.DataFrame, settings: Settings) -> None:
    """A TCN bundle reads a window of feature rows: bar by bar the strategy keeps that window
    (seeded from the history, one row per bar, also while only observing) and decides what the
    batch pipeline decides over the whole series."""
    tcn = {"window": 8, "hidden": 8, "levels": 1, "epochs": 2, "purge": 4}
    config = ExperimentConfig.from_settings(
        settings,
        models=ModelConfig.model_validate({"kind": "tcn", "n_jobs": 1, "tcn": tcn}),
        validation=ValidationConfig(min_train=1000, test_size=500),
    )
    prepared = prepare(candles.iloc[:TRAIN], config.features, config.labels, config.costs, "1h")
    bundle = train_bundle(prepared, config)
    assert bundle.predictor.model.context_rows == 7
    history = {SYMBOL: candles.iloc[:TRAIN]}
    always, paused = (model_feed([SYMBOL], settings, history, bundle) for _ in range(2))
    fraction, proba, paused_fraction = [], [], []
    strategy = always.strategy
    assert isinstance(strategy, ModelBundleStrategy)
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + 120])):
        fraction.append(always.at(i, bars).fraction[0])
        window = strategy.inputs(always.ctx.history(SYMBOL), SYMBOL)
        assert window is not None and len(window) == 8
        proba.append(bundle.predictor.predict_proba(window)[-1])
        if 20 <= i < 40:  # observed only: the window still takes these bars' rows
            paused.observe(bars)
        else:
            paused_fraction.append((i, paused.at(i, bars).fraction[0]))
    batch = bundle_targets(SYMBOL, candles.iloc[: TRAIN + 120], bundle, settings, TIMEFRAME)
    expected = batch.fraction.to_numpy()[TRAIN:]
    assert np.array_equal(fraction, expected, equal_nan=True)
    assert all(f == expected[i] for i, f in paused_fraction)
    matrix = build_features(candles.iloc[: TRAIN + 120], list(FEATURES.specs()), timeframe="1h")
    want = bundle.predictor.predict_proba(matrix.frame.dropna())[-120:]
    np.testing.assert_allclose(proba, want, rtol=1e-9, atol=1e-12)  # features equal to rounding
    assert np.ptp(want[:, -1]) > 1e-3  # the probabilities move with the window
