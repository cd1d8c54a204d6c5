"""Causal per-bar target feeds equal the batch targets for the same bars.

SmaCrossTargets: bit-identical to ``sma_crossover_targets`` (and a paper replay driven by it
reproduces the batch backtest). ModelTargets: fractions and ATR stops bit-identical to
``pipeline.bundle_targets`` over a replay slice after training on earlier bars; the feature row
equals the batch row exactly in the GARCH column and to 1e-8 relative elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import run_managed_backtest
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError, DataError
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.runner import paper_runner
from aitrader.live.targets import ModelTargets, SmaCrossTargets
from aitrader.models.config import LightGBMParams, ModelConfig
from aitrader.models.registry import ModelBundle, save_bundle
from aitrader.pipeline import bundle_targets
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.strategy.config import Band, SignalConfig, SignalOverride
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


# -- SMA crossover ---------------------------------------------------------------------------


@pytest.mark.parametrize("short", [False, True])
def test_sma_cross_per_bar_equals_batch_over_the_sample(btc: pd.DataFrame, short: bool) -> None:
    seed = 1000
    feed = SmaCrossTargets([SYMBOL], 10, 30, 0.03, None, {SYMBOL: btc.iloc[:seed]}, short=short)
    live = np.array(
        [feed.at(i, bars).fraction[0] for i, bars in enumerate(_bars(SYMBOL, btc.iloc[seed:]))]
    )
    batch = sma_crossover_targets(btc["close"].to_numpy(np.float64), 10, 30, short=short)
    assert np.array_equal(live, batch[seed:])  # bit-identical, no NaN after the seed
    row = feed.at(0, {})
    assert row.stop_loss[0] == 0.03 and np.isnan(row.take_profit[0])
    assert np.isnan(row.stop_price[0])


def test_sma_cross_without_history_warms_up_like_batch(btc: pd.DataFrame) -> None:
    candles = btc.iloc[:200]
    feed = SmaCrossTargets([SYMBOL], 5, 20)
    live = np.array([feed.at(i, b).fraction[0] for i, b in enumerate(_bars(SYMBOL, candles))])
    batch = sma_crossover_targets(candles["close"].to_numpy(np.float64), 5, 20)
    assert np.array_equal(live, batch, equal_nan=True)
    assert np.isnan(live[:19]).all()


def test_sma_cross_ignores_a_repeated_bar(btc: pd.DataFrame) -> None:
    bars = list(_bars(SYMBOL, btc.iloc[:60]))
    once, twice = SmaCrossTargets([SYMBOL], 3, 7), SmaCrossTargets([SYMBOL], 3, 7)
    for i, b in enumerate(bars):
        once.at(i, b)
        twice.at(i, b)
        twice.at(i, b)  # a replayed bar (e.g. after a reconnect) must not count twice
    assert np.array_equal(once.at(60, {}).fraction, twice.at(60, {}).fraction)
    assert np.array_equal(once._sums, twice._sums)


def test_sma_cross_rejects_bad_windows() -> None:
    with pytest.raises(ConfigError):
        SmaCrossTargets([SYMBOL], 30, 10)


def test_paper_replay_with_sma_feed_reproduces_batch_backtest(
    btc: pd.DataFrame, tmp_path: Path
) -> None:
    frame = btc.iloc[-1500:]
    risk = RiskConfig(limits=LimitsConfig(risk_per_trade=0.04, require_stop=False))
    batch = sma_crossover_targets(frame["close"].to_numpy(np.float64), 10, 30, short=True)
    options = RunOptions(stop_loss=0.03, take_profit=0.06, benchmarks=False)
    managed = run_managed_backtest(
        {SYMBOL: frame}, batch[:, None], None, BrokerConfig(), risk, options
    )
    feed = SmaCrossTargets([SYMBOL], 10, 30, 0.03, 0.06, short=True)
    with Ledger(tmp_path / "ledger.db") as ledger:
        runner = paper_runner(
            [ReplayFeed(SYMBOL, frame, speed=0)], feed, ledger, BrokerConfig(), risk
        )
        asyncio.run(runner.run())
        fills = ledger.fills()
    expected = managed.result.fills
    assert len(fills) == len(expected) > 10
    for column in ("side", "qty", "price", "fee"):
        assert fills[column].tolist() == expected[column].tolist(), column


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


def _replay(feed: ModelTargets, candles: pd.DataFrame) -> tuple[np.ndarray, ...]:
    rows, fraction, stop = [], [], []
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + REPLAY])):
        out = feed.at(i, bars)
        fraction.append(out.fraction[0])
        stop.append(out.stop_loss[0])
        rows.append(feed.features(SYMBOL).to_numpy()[0])
    return np.array(fraction), np.array(stop), np.array(rows)


def test_model_targets_equal_batch_pipeline(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    feed = ModelTargets([SYMBOL], bundle, settings, {SYMBOL: candles.iloc[:TRAIN]}, TIMEFRAME)
    fraction, stop, rows = _replay(feed, candles)
    batch = bundle_targets(SYMBOL, candles.iloc[: TRAIN + REPLAY], bundle, settings, TIMEFRAME)
    expected = batch.fraction.to_numpy()[TRAIN:]
    assert np.array_equal(fraction, expected)
    assert np.array_equal(stop, batch.stop_loss.to_numpy()[TRAIN:])
    reasons = np.bincount(batch.signals.reason[TRAIN:], minlength=6)
    assert (fraction > 0).sum() > 20 and (fraction < 0).sum() > 5  # both sides traded
    assert reasons[4] > 0 and reasons[0] > 20  # the EV gate bit on some bars
    # the feature rows: GARCH bit-identical (incremental filter), the rest to rounding
    full = build_features(candles.iloc[: TRAIN + REPLAY], list(FEATURES.specs()), timeframe="1h")
    want = full.frame.loc[candles.index[TRAIN : TRAIN + REPLAY], feed.columns].to_numpy()
    garch = feed.columns.index("garch_vol_300_700")
    assert np.array_equal(rows[:, garch], want[:, garch])
    np.testing.assert_allclose(rows, want, rtol=1e-8, atol=1e-12)


def test_model_targets_divide_by_symbols_and_skip_repeats(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    history = {SYMBOL: candles.iloc[:TRAIN], "ETH/USD": candles.iloc[:TRAIN]}
    feed = ModelTargets([SYMBOL, "ETH/USD"], bundle, settings, history, TIMEFRAME)
    single = ModelTargets([SYMBOL], bundle, settings, {SYMBOL: candles.iloc[:TRAIN]}, TIMEFRAME)
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + 60])):
        two, one = feed.at(i, bars), single.at(i, bars)
        again = feed.at(i, bars)  # repeated bar: same answer, state unchanged
        assert np.array_equal(two.fraction, again.fraction, equal_nan=True)
        assert two.fraction[0] == one.fraction[0] / 2
        assert np.isnan(two.fraction[1])  # ETH never got a bar: no decision
    assert set(feed.timings) == {"features", "model", "policy"}


def test_model_targets_need_the_warm_up_in_history(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    with pytest.raises(DataError, match="history"):
        ModelTargets([SYMBOL], bundle, settings, {SYMBOL: candles.iloc[:20]}, TIMEFRAME)
    with pytest.raises(DataError, match="no history"):
        ModelTargets([SYMBOL], bundle, settings, {}, TIMEFRAME)


def test_observed_bars_keep_the_state_whole(
    candles: pd.DataFrame, settings: Settings, bundle: ModelBundle
) -> None:
    history = {SYMBOL: candles.iloc[:TRAIN]}
    always = ModelTargets([SYMBOL], bundle, settings, history, TIMEFRAME)
    paused = ModelTargets([SYMBOL], bundle, settings, history, TIMEFRAME)
    sma_always, sma_paused = SmaCrossTargets([SYMBOL], 5, 20), SmaCrossTargets([SYMBOL], 5, 20)
    for i, bars in enumerate(_bars(SYMBOL, candles.iloc[TRAIN : TRAIN + 40])):
        want, sma_want = always.at(i, bars), sma_always.at(i, bars)
        if 10 <= i < 30:  # paused: bars observed, no decisions asked for
            paused.observe(bars)
            sma_paused.observe(bars)
            continue
        assert np.array_equal(paused.at(i, bars).fraction, want.fraction, equal_nan=True)
        assert np.array_equal(sma_paused.at(i, bars).fraction, sma_want.fraction, equal_nan=True)
    assert paused._filters[SYMBOL][0].value == always._filters[SYMBOL][0].value


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
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "50000", "--model", str(directory)]
    too_long = CliRunner().invoke(app, args, env=env)
    assert too_long.exit_code == 2 and "bars of history" in too_long.output
