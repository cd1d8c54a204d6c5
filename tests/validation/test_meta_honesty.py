"""The meta-agent's honesty: no combiner shows an edge on a pure random walk; on a walk with a
planted 3-bar momentum it finds the signal, weights the agents that see it, and trades it
through the risk-managed engine, net of costs, out of sample."""

from __future__ import annotations

import math

import pytest
from factories import momentum_walk
from unseen import train_then_trade

from aitrader.config import FeaturesConfig
from aitrader.features.spec import FeatureSpec
from aitrader.models.config import ModelConfig
from aitrader.models.meta import MetaModel
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
from aitrader.validation.walkforward import prepare

SPECS = (
    FeatureSpec(name="trend_strength", params={"window": 2}),
    FeatureSpec(name="roc", params={"period": 3}),
    FeatureSpec(name="rsi"),
    FeatureSpec(name="zscore"),
)
AGENTS = [{"kind": "lightgbm", "params": {"n_estimators": 100}}, "logistic", "majority"]
VALIDATION = ValidationConfig(min_train=2000, test_size=1000)


def config(combiner: str) -> ExperimentConfig:
    model = ModelConfig.model_validate(
        {"kind": "meta", "meta": {"agents": AGENTS, "combiner": combiner}}
    )
    return ExperimentConfig(features=FeaturesConfig(preset="none", extra=SPECS), models=model)


def run(beta: float, seed: int, combiner: str) -> tuple[dict[str, float], dict[str, float]]:
    experiment = config(combiner)
    candles = momentum_walk(6000, seed=seed, beta=beta)
    prepared = prepare(candles, experiment.features, experiment.labels, experiment.costs, "1h")
    context = experiment.context("SYN/USD", "1h")
    evaluation = evaluate(prepared, experiment.models, VALIDATION, context)
    return evaluation.metrics, overfitting_stats(evaluation)


@pytest.mark.slow
@pytest.mark.parametrize("combiner", ["vote", "confidence", "stack"])
def test_no_combiner_shows_an_edge_on_a_random_walk(combiner: str) -> None:
    for seed in (1, 2):
        m, stats = run(0.0, seed, combiner)
        p = m["majority_rate"]
        assert m["accuracy"] <= p + 3 * math.sqrt(p * (1 - p) / m["n"])
        assert m["brier_skill"] <= 0.005
        assert m["psr"] < 0.95  # net Sharpe not significantly positive
        assert not stats["dsr"] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("combiner", ["vote", "confidence", "stack"])
def test_every_combiner_finds_and_trades_the_planted_momentum(combiner: str) -> None:
    m, stats = run(0.15, 1, combiner)
    p = m["majority_rate"]
    assert m["accuracy"] > p + 4 * math.sqrt(p * (1 - p) / m["n"])
    assert m["trades"] >= 50 and m["time_in_market"] > 0.2
    assert m["net_sharpe"] > 1.0 and m["net_return"] > 0.0  # after fees, slippage and stops
    assert stats["dsr"] > 0.9


@pytest.mark.slow
def test_a_meta_bundle_trades_unseen_bars_of_the_planted_walk() -> None:
    candles = momentum_walk(9000, seed=2, beta=0.15)
    bundle, _, result = train_then_trade(candles, 6000, config("vote"))
    model = bundle.predictor.model
    assert isinstance(model, MetaModel)
    weights = dict(zip([a.name for a in model.agents_], model.weights_[0], strict=True))
    assert weights["majority"] < 0.1 < weights["lightgbm"] + weights["logistic"]
    assert len(result.result.trades) >= 30
    assert result.result.equity.iloc[-1] > result.result.initial_cash
