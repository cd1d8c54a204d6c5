"""The GARCH volatility agent in trading: ``plans.stop_method: garch`` places the stop at
``stop_garch`` × the predicted next high-low range, vol-target sizing divides by the agent's σ
forecast, both through the model strategy, bar by bar and vectorised alike, executed by the
engine — and with ``modes.regime.source: hmm`` the regime overrides on top."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from factories import regime_walk
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import CostsConfig, Settings
from aitrader.data.store import DatasetKey, Store
from aitrader.engine.backtest import RunOptions
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed_policy import protective_levels
from aitrader.errors import ConfigError
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.live.ledger import Ledger
from aitrader.models.config import ModelConfig
from aitrader.models.garch import GarchAgentModel, GarchParams
from aitrader.models.heads import Head
from aitrader.models.registry import ModelBundle, save_bundle
from aitrader.risk.config import LimitsConfig, RiskConfig, SizingConfig
from aitrader.risk.intents import OrderIntent, PortfolioSnapshot
from aitrader.risk.limits import RiskManager
from aitrader.strategies.model import ModelBundleStrategy
from aitrader.strategies.trade_plan import TradePlanStrategy
from aitrader.strategy.base import Environment, Target
from aitrader.strategy.bundle import bundle_targets
from aitrader.strategy.config import (
    Band,
    ModesConfig,
    PlanConfig,
    RegimeConfig,
    SignalConfig,
    SignalOverride,
)
from aitrader.strategy.edge import model_stops
from aitrader.strategy.plans import PlanContext, make_plan, plan_levels
from aitrader.strategy.regimes import garch_outputs, regime_source
from aitrader.strategy.run import RunSpec, backtest_strategy, check_strategy
from aitrader.strategy.signals import Signal, direction_probabilities
from aitrader.validation.config import ValidationConfig
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare

SYMBOL, TRAIN, TRADED = "SYN/USD", 3000, 600  # paper needs 3000 bars of history
WINDOW = 24
FEATURES = FeaturesConfig(preset="none", extra=(FeatureSpec(name="lags", params={"lags": WINDOW}),))
ZERO_SLIP = CostsConfig(slippage_bps=0.0)  # fees stay on; stop exits fill at the stop price
ONE_BAND = SignalConfig(  # trades on almost every bar: the stop is what ends positions
    long_threshold=0.34,
    short_threshold=0.34,
    bands=(Band(min_prob=0.34, multiple=1.0),),
    min_ev=-1.0,
)
LOOSE = LimitsConfig(
    risk_per_trade=1.0,
    max_daily_loss=1.0,
    max_trades_per_day=1000,
    cooldown_after_losses=1000,
    kill_on_max_drawdown=False,
    drawdown_reduce_from=0.9,
    max_drawdown=1.0,
)


# -- a small fixed example, by hand -------------------------------------------------------------


def fixed_agent() -> GarchAgentModel:
    """A GARCH agent with hand-set parameters: ω 2e-6, α 0.1, β 0.85, range 2 σ."""
    model = GarchAgentModel(GarchParams(window=8))
    model.garch_ = np.array([2e-6, 0.1, 0.85])
    model.range_ratio_, model.threshold_ = 2.0, 0.01
    flat = np.array([0.0, 1.0])
    model.head_ = model.vol_head_ = Head(
        flat, np.zeros(7), np.ones(7), (np.zeros((7, 1)),), (np.zeros(1),)
    )
    model.classes_, model.n_features_in_ = np.array([0.0, 1.0]), 16
    return model


def steady_candles(n: int = 12) -> pd.DataFrame:
    """Closes rising 1 % (log) per bar from 100."""
    close = 100.0 * np.exp(0.01 * np.arange(n))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": close * 1.005, "low": close / 1.005, "close": close, "volume": 1.0},
        index=index,
    )


def test_the_garch_stop_price_on_a_fixed_example() -> None:
    """σ² starts at the mean square (1e-4) and takes 8 GARCH steps on r = 0.01:
    σ² = 8e-5 + 2e-5 · 0.85⁸; range = 2 σ; a long's stop = close × (1 − 1.5 × range)."""
    candles = steady_candles()
    plans = PlanConfig(stop_method="garch", stop_garch=1.5)
    stop = model_stops(candles, plans, fixed_agent())
    sigma = math.sqrt(8e-5 + 2e-5 * 0.85**8)  # 0.0092439…
    assert np.isnan(stop[:8]).all()  # the 8-bar window is not complete yet
    assert stop[-1] == pytest.approx(1.5 * 2 * sigma, rel=1e-9)
    close = float(candles["close"].iat[-1])  # 111.6278
    price, _ = protective_levels(1.0, close, math.nan, float(stop[-1]))
    assert price == pytest.approx(close * (1 - 3 * sigma), rel=1e-9)
    assert price == pytest.approx(108.5322, abs=1e-4)


def test_a_trade_plan_places_its_stop_by_the_garch_range() -> None:
    """The same fixed example through a trade plan (``aitrader scan``): stop at 1.5 × 2 σ below
    the entry for a long; 1 % of 10,000 risked to it."""
    candles = steady_candles(30)
    plans = PlanConfig(stop_method="garch", stop_garch=1.5, min_tp1_net=0.0)
    sizing = SizingConfig(method="fixed_fractional", risk_pct=0.01, max_leverage=10.0)
    ctx = PlanContext(SYMBOL, "1h", 10_000.0, CostsConfig(), plans, sizing)
    levels = plan_levels(candles, plans, fixed_agent())
    plan = make_plan(candles, levels, len(candles) - 1, Signal(1, 1.0, 0.9, 0.01, "trade"), ctx)
    sigma = math.sqrt(8e-5 + 2e-5 * 0.85**8)
    entry = float(candles["close"].iat[-1])
    assert plan.stop == pytest.approx(entry * (1 - 3 * sigma), rel=1e-9)
    assert plan.reason.startswith("stop by garch")
    assert plan.qty == pytest.approx(100.0 / (entry * 3 * sigma), rel=1e-9)


def test_trade_plans_with_a_garch_stop_need_a_garch_agent() -> None:
    settings = Settings(plans=PlanConfig(stop_method="garch"))
    with pytest.raises(ConfigError, match=r"plans\.stop_method is 'garch'"):
        TradePlanStrategy().setup(Environment((SYMBOL,), "1h", settings))


def test_vol_target_sizes_by_the_strategys_sigma() -> None:
    """2 % target / 1 % σ forecast = 2× equity: 200 units at 100 on 10,000 (cap 3×)."""
    sizing = SizingConfig(method="vol_target", target_vol=0.02, max_leverage=3.0)
    limits = LOOSE.model_copy(update={"max_position": 5.0, "max_total_exposure": 5.0})
    risk = RiskManager(RiskConfig(sizing=sizing, limits=limits))
    time = pd.Timestamp("2024-01-01", tz="UTC")
    snapshot = PortfolioSnapshot(10_000.0)
    intent = OrderIntent(time, "X", 500.0, 100.0, stop=95.0, vol=0.01)
    decision = risk.check(intent, snapshot)
    assert decision.approved == pytest.approx(200.0)
    assert "σ 1.000% forecast by the strategy" in decision.reason
    # without a forecast (no bars tracked yet) the realised estimate is unknown: no size
    bare = risk.check(OrderIntent(time, "X", 500.0, 100.0, stop=95.0), snapshot)
    assert bare.approved == 0.0


def test_a_target_refuses_a_non_positive_sigma() -> None:
    with pytest.raises(ConfigError, match=r"Target: vol .* must be > 0, got 0.0"):
        Target(1.0, vol=0.0)
    assert Target(1.0).vol != Target(1.0).vol  # NaN: the risk manager's own estimate


def test_garch_stop_without_a_garch_agent_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"plans\.stop_method is 'garch'.*no GARCH"):
        model_stops(steady_candles(), PlanConfig(stop_method="garch"), None)


# -- a trained GARCH bundle through the model strategy and the engine --------------------------


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return regime_walk(TRAIN + TRADED, seed=21, vols=(0.003, 0.015))


@pytest.fixture(scope="module")
def bundle(candles: pd.DataFrame) -> ModelBundle:
    settings = Settings(features=FEATURES, costs=ZERO_SLIP)
    config = ExperimentConfig.from_settings(
        settings,
        models=ModelConfig(kind="garch", n_jobs=1, garch={"window": WINDOW}),
        validation=ValidationConfig(min_train=1000, test_size=500),
    )
    prepared = prepare(candles.iloc[:TRAIN], config.features, config.labels, config.costs, "1h")
    return train_bundle(prepared, config)


def run(
    candles: pd.DataFrame, bundle: ModelBundle, settings: Settings, per_bar: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = RunSpec(
        broker=BrokerConfig.from_costs(settings.costs),
        risk=settings.risk,
        options=RunOptions(timeframe="1h", benchmarks=False),
        start=TRAIN,
        per_bar=per_bar,
        bundle=bundle,
    )
    out = backtest_strategy(ModelBundleStrategy(), {SYMBOL: candles}, settings, spec)
    return out.result.trades, out.decisions


def flipping(candles: pd.DataFrame, bundle: ModelBundle) -> SignalConfig:
    """Long-only at the median win probability of the traded bars: long about half the
    time, so positions open and close often."""
    X = build_features(candles, FEATURES).frame.dropna()
    up, down = direction_probabilities(bundle.predictor.predict_proba(X), bundle.predictor.classes)
    p_long = up if down is None else up / (up + down)
    cut = float(np.median(p_long[X.index >= candles.index[TRAIN]]))
    band = (Band(min_prob=cut, multiple=1.0),)
    return SignalConfig(long_threshold=cut, bands=band, min_ev=-1.0, allow_short=False)


def test_the_engine_exits_at_the_garch_stop(candles: pd.DataFrame, bundle: ModelBundle) -> None:
    """Every stop exit that did not gap fills at entry × (1 − 0.5 × the range predicted at the
    decision bar), the bar before the entry fill."""
    settings = Settings(
        features=FEATURES,
        costs=ZERO_SLIP,
        signals=flipping(candles, bundle),
        plans=PlanConfig(stop_method="garch", stop_garch=0.5),
        risk=RiskConfig(limits=LOOSE),
    )
    stops = bundle_targets(SYMBOL, candles, bundle, settings, "1h").stop_loss
    trades, _ = run(candles, bundle, settings)
    hit = trades[trades["exit_reason"] == "stop_loss"]
    assert len(hit) >= 10
    checked = 0
    for trade in hit.itertuples():
        decided = candles.index.get_loc(trade.entry_time) - 1
        level = trade.entry_price * (1 - trade.side * stops.iat[decided])
        exit_bar = candles.loc[trade.exit_time]
        if trade.side * (exit_bar["open"] - level) > 0:  # no gap through the stop
            assert trade.exit_price == pytest.approx(level, rel=1e-9)
            checked += 1
    assert checked >= 5
    atr = settings.model_copy(update={"plans": PlanConfig()})
    assert not run(candles, bundle, atr)[0]["exit_price"].equals(trades["exit_price"])


def test_vol_target_reads_the_agents_sigma_in_a_backtest(
    candles: pd.DataFrame, bundle: ModelBundle
) -> None:
    """Each entry the vol target shrinks holds target_vol / the agent's σ at the decision bar."""
    sizing = SizingConfig(method="vol_target", target_vol=0.002, max_leverage=1.0)
    settings = Settings(
        features=FEATURES,
        costs=ZERO_SLIP,
        signals=ONE_BAND,
        risk=RiskConfig(sizing=sizing, limits=LOOSE),
    )
    sigma = bundle_targets(SYMBOL, candles, bundle, settings, "1h").vol
    _, decisions = run(candles, bundle, settings)
    by_sigma = decisions["reason"].str.contains("forecast by the strategy")
    sized = decisions[by_sigma & (decisions["action"] == "resize")]
    assert len(sized) >= 10
    for row in sized.itertuples():
        want = 0.002 / sigma.loc[row.time]
        assert abs(row.approved_target) == pytest.approx(want, rel=1e-9)


def test_per_bar_equals_vectorised_with_hmm_regimes_garch_stop_and_sigma(
    candles: pd.DataFrame, bundle: ModelBundle
) -> None:
    """``aitrader strategy check``: fraction, stop and σ bar by bar equal the batch ones, with
    the regime overrides keyed by an HMM fitted on the history (the bundle has none)."""
    no_longs = SignalOverride(allow_long=False)
    signals = ONE_BAND.model_copy(
        update={"regime_overrides": {"range_high": no_longs, "trend_high": no_longs}}
    )
    regime = RegimeConfig(source="hmm", hmm_states=2, hmm_window=WINDOW)
    settings = Settings(
        features=FEATURES,
        costs=ZERO_SLIP,
        signals=signals,
        modes=ModesConfig(regime=regime),
        plans=PlanConfig(stop_method="garch"),
        risk=RiskConfig(sizing=SizingConfig(method="vol_target", target_vol=0.004), limits=LOOSE),
    )
    spec = RunSpec(
        broker=BrokerConfig.from_costs(settings.costs), risk=settings.risk,
        options=RunOptions(timeframe="1h", benchmarks=False), start=TRAIN, bundle=bundle,
    )  # fmt: skip
    report = check_strategy(ModelBundleStrategy, {SYMBOL: candles}, settings, spec)
    assert report.decisions == TRADED
    assert report.difference is None and report.equal
    # the HMM's high tier (fitted on the history, as the strategy's) forbade longs, and it is
    # high in the planted wild blocks
    labels = regime_source(regime, bundle, candles.iloc[:TRAIN]).labels(candles).to_numpy()
    high = np.char.endswith(labels.astype(str), "_high")
    wild = (np.arange(len(candles)) // 300) % 2 == 1
    assert np.mean(high[TRAIN:] == wild[TRAIN:]) > 0.95
    trades, _ = run(candles, bundle, settings)
    decided = candles.index.get_indexer(trades["entry_time"]) - 1
    assert high[decided].sum() >= 5
    assert (trades["side"][high[decided]] < 0).all() and (trades["side"] > 0).any()


def test_hmm_source_with_too_little_history_is_a_config_error(
    candles: pd.DataFrame, bundle: ModelBundle
) -> None:
    settings = Settings(
        features=FEATURES,
        signals=ONE_BAND.model_copy(
            update={"regime_overrides": {"range_high": SignalOverride(allow_long=False)}}
        ),
        modes=ModesConfig(regime=RegimeConfig(source="hmm", hmm_window=WINDOW)),
    )
    spec = RunSpec(options=RunOptions(timeframe="1h", benchmarks=False), start=150, bundle=bundle)
    with pytest.raises(ConfigError, match=r"modes\.regime\.source is 'hmm' but only 150 bars"):
        backtest_strategy(ModelBundleStrategy(), {SYMBOL: candles}, settings, spec)


def test_the_lags_rows_the_agents_read_are_the_bundles_features(
    candles: pd.DataFrame, bundle: ModelBundle
) -> None:
    """The agent's outputs from the candles equal its outputs on the bundle's feature rows."""
    model = bundle.predictor.model
    assert isinstance(model, GarchAgentModel)
    X = build_features(candles.iloc[-200:], FEATURES).frame.dropna()
    direct = model.outputs(bundle.predictor.transform(X))
    ours = garch_outputs(model, candles.iloc[-200:]).loc[X.index]
    assert np.array_equal(direct.to_numpy(), ours.to_numpy())


@pytest.fixture(scope="module")
def meta(candles: pd.DataFrame) -> ModelBundle:
    """A meta-agent with an HMM regime agent and a GARCH volatility agent."""
    agents = [
        {"kind": "hmm", "params": {"window": WINDOW, "states": 2}},
        {"kind": "garch", "params": {"window": WINDOW}},
    ]
    meta = {"agents": agents, "inner_folds": 2, "regime_agent": "hmm"}
    config = ExperimentConfig.from_settings(
        Settings(features=FEATURES, costs=ZERO_SLIP),
        models=ModelConfig(kind="meta", n_jobs=1, meta=meta),
        validation=ValidationConfig(min_train=1000, test_size=500),
    )
    prepared = prepare(candles.iloc[:TRAIN], config.features, config.labels, config.costs, "1h")
    return train_bundle(prepared, config)


def test_a_meta_agents_hmm_and_garch_agents_are_the_ones_used(
    candles: pd.DataFrame, meta: ModelBundle
) -> None:
    """No HMM is fitted when the bundle has one: the meta-agent's own agent labels the bars
    (high in the planted wild blocks), and its GARCH agent gives the σ each target carries."""
    agents = {a.name: a.model for a in meta.predictor.model.agents_}  # type: ignore[attr-defined]
    regime = RegimeConfig(source="hmm", hmm_window=100, hmm_states=4)  # ignored: the bundle's
    source = regime_source(regime, meta, candles.iloc[:10])  # too few bars to fit: not needed
    assert source.hmm is agents["hmm"]
    labels = source.labels(candles).to_numpy().astype(str)[TRAIN:]
    wild = ((np.arange(len(candles)) // 300) % 2 == 1)[TRAIN:]
    assert np.mean(np.char.endswith(labels, "_high") == wild) > 0.95
    settings = Settings(features=FEATURES, signals=ONE_BAND)
    vol = bundle_targets(SYMBOL, candles, meta, settings, "1h").vol
    sigma = garch_outputs(agents["garch"], candles)["garch_sigma"].to_numpy()
    assert np.array_equal(vol.to_numpy(), sigma, equal_nan=True)
    assert vol.iloc[TRAIN:].notna().all()


def test_paper_replay_trades_the_agents_from_the_config(
    candles: pd.DataFrame, meta: ModelBundle, tmp_path: Path
) -> None:
    """``aitrader paper --replay ... --model DIR`` with the agents switched on in the config:
    HMM regimes, GARCH stops and vol-target sizing on the GARCH σ, bar by bar."""
    dataset = "kraken:SYN/USD:1h"
    Store(tmp_path / "data").write(DatasetKey.parse(dataset), candles, "test")
    no_longs = {"allow_long": False}
    config = {
        "data": {"dir": str(tmp_path / "data")},
        "costs": ZERO_SLIP.model_dump(mode="json"),
        "signals": ONE_BAND.model_dump(mode="json")
        | {"regime_overrides": {"range_high": no_longs, "trend_high": no_longs}},
        "modes": {"regime": {"source": "hmm"}},
        "plans": {"stop_method": "garch", "stop_garch": 0.5},
        "risk": {
            "sizing": {"method": "vol_target", "target_vol": 0.004},
            "limits": LOOSE.model_dump(mode="json"),
        },
    }
    path = tmp_path / "aitrader.yaml"
    path.write_text(yaml.safe_dump(config))
    bundle = save_bundle(meta, tmp_path / "meta")
    ledger = tmp_path / "paper.db"
    args = ["--config", str(path), "paper", "--replay", dataset, "--model", str(bundle)]
    args += ["--bars", str(TRADED), "--max-bars", str(TRADED), "--ledger", str(ledger)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    with Ledger(ledger) as book:
        verdicts = book.risk_decisions()
        fills = book.fills()
    assert verdicts["reason"].str.contains("forecast by the strategy").sum() >= 10
    assert (fills["reason"] == "stop_loss").sum() >= 3
