"""Honesty of the agents (hmm, garch, quantile): no significant edge on a random walk, through
the same walk-forward evaluation, calibration and managed-engine trading as every kind."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig
from aitrader.validation.walkforward import prepare

SPECS = [FeatureSpec(name="rsi"), FeatureSpec(name="realized_vol")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hmm", "garch", "quantile"])
def test_random_walk_gives_an_agent_no_edge(
    make_candles: Callable[..., pd.DataFrame], kind: str
) -> None:
    candles = make_candles(9000, seed=21)
    models = ModelConfig.model_validate({"kind": kind, "quantile": {"n_estimators": 60}})
    config = ExperimentConfig.model_validate({"features": {"preset": "none", "extra": SPECS}})
    config = ExperimentConfig(features=config.features, models=models)  # adds the lags window
    assert [s.name for s in config.features.specs()] == ["rsi", "realized_vol", "lags"]
    prepared = prepare(candles, config.features, LabelConfig(kind="binary"), CostsConfig())
    result = evaluate(prepared, models, ValidationConfig(min_train=3000, test_size=2000))
    s = result.metrics
    p = s["majority_rate"]
    assert s["accuracy"] <= p + 3 * math.sqrt(p * (1 - p) / s["n"])
    assert s["brier_skill"] <= 0.005
    assert s["psr"] < 0.95  # net-of-cost Sharpe not significantly positive
    if kind == "quantile":  # the evaluation scores the intervals it trades beside
        assert abs(s["coverage_80"] - 0.80) <= 0.04
        assert abs(s["coverage_95"] - 0.95) <= 0.025
        assert 0 < s["width_80"] < s["width_95"]
        assert result.folds["coverage_80"].between(0.7, 0.9).all()
    else:
        assert "coverage_80" not in s
