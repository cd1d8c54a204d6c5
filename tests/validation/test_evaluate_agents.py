"""``evaluate`` trades each out-of-sample bar with its own fold's agents: the GARCH agent's σ
sizes a vol-target entry and its predicted range places the ``plans.stop_method: garch`` stop;
without a GARCH agent that stop is a clear config error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import momentum_walk

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.models.config import ModelConfig
from aitrader.risk.config import RiskConfig, SizingConfig
from aitrader.strategy.config import PlanConfig, SignalConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig
from aitrader.validation.splits import make_folds
from aitrader.validation.walkforward import Prepared, prepare, run_fold

FEATURES = FeaturesConfig(preset="none", extra=(FeatureSpec(name="lags", params={"lags": 24}),))
SETTINGS = Settings(
    features=FEATURES,
    plans=PlanConfig(stop_method="garch", stop_garch=1.0),
    risk=RiskConfig(sizing=SizingConfig(method="vol_target", target_vol=0.004)),
    signals=SignalConfig(min_trades=10),
)
VALIDATION = ValidationConfig(min_train=1200, test_size=600, n_jobs=1)


def experiment(kind: str, **params: object) -> ExperimentConfig:
    models = ModelConfig(kind=kind, n_jobs=1, **({kind: params} if params else {}))
    return ExperimentConfig.from_settings(SETTINGS, models=models, validation=VALIDATION)


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    """A planted 3-bar momentum (learnable: the tuned decision trades)."""
    config = experiment("garch", window=24)
    candles = momentum_walk(3000, 7, beta=0.3)
    return prepare(candles, config.features, config.labels, config.costs, "1h")


def test_entries_use_their_folds_garch_sigma_and_range(prepared: Prepared) -> None:
    config = experiment("garch", window=24)
    result = evaluate(
        prepared, config.models, VALIDATION, config.context("SYN/USD", "1h"), None, False
    )
    folds = make_folds(prepared.windows, VALIDATION, prepared.horizon)
    agents = pd.concat(
        [run_fold(prepared, f, config.models).agents.iloc[f.calibrate.size :] for f in folds]
    )
    entries = result.backtest.decisions
    sized = entries["reason"].str.contains("forecast by the strategy")
    entries = entries[sized & (entries["action"] == "resize")]
    assert len(entries) >= 10
    for row in entries.itertuples():
        sigma, span = agents.at[row.time, "garch_sigma"], agents.at[row.time, "garch_range"]
        side = np.sign(row.target)
        assert abs(row.approved_target) == pytest.approx(0.004 / sigma, rel=1e-9)
        assert row.stop == pytest.approx(row.price * (1 - side * 1.0 * span), rel=1e-9)
    assert (result.backtest.result.trades["exit_reason"] == "stop_loss").sum() >= 3


def test_a_garch_stop_without_a_garch_agent_is_a_config_error(prepared: Prepared) -> None:
    config = experiment("logistic")
    with pytest.raises(ConfigError, match=r"plans\.stop_method is 'garch'.*no GARCH"):
        evaluate(prepared, config.models, VALIDATION, config.context("SYN/USD", "1h"), None, False)
