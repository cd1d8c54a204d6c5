"""The meta-agent through the commands a user runs: ``train -k meta``, ``backtest --strategy
model --model DIR``, ``paper --replay ... --model DIR``; each decision carries the agents'
views and weights in ``Target.info``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.data.store import DatasetKey, Store
from aitrader.engine.types import Bar
from aitrader.live.ledger import Ledger
from aitrader.models.meta import MetaModel
from aitrader.models.registry import load_bundle
from aitrader.strategies.model import ModelBundleStrategy
from aitrader.strategy.base import Environment, Target
from aitrader.strategy.feed import StrategyFeed

DATASET = "kraken:BTC/USD:1h"
TRAIN = 6000
CONFIG = {
    "features": {
        "preset": "none",
        "extra": [
            {"name": "rsi"},
            {"name": "roc"},
            {"name": "trend_strength", "params": {"window": 2}},
        ],
    },
    "models": {
        "kind": "meta",
        "meta": {
            "agents": [{"kind": "lightgbm", "params": {"n_estimators": 30}}, "logistic"],
            "combiner": "confidence",
            "inner_folds": 2,
        },
    },
    "validation": {"min_train": 2500, "test_size": 1500},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A meta bundle trained through the CLI on the first 6,000 bundled BTC hours."""
    root = tmp_path_factory.mktemp("meta")
    config = root / "aitrader.yaml"
    config.write_text(yaml.safe_dump(CONFIG | {"data": {"dir": str(root / "data")}}))
    head = load_sample("BTC-USD-1h").iloc[:TRAIN]
    Store(root / "data").write(DatasetKey.parse(DATASET), head, "test")
    out = root / "models" / "meta"
    args = ["--config", str(config), "train", DATASET, "-o", str(out), "--no-track", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "meta"
    return config, out


def test_trained_bundle_holds_its_agents_safely(trained: tuple[Path, Path]) -> None:
    _, out = trained
    assert not list(out.glob("*.pkl"))
    assert {"meta.json", "agent0-model.txt", "agent1-model.npz"} <= {p.name for p in out.iterdir()}
    model = load_bundle(out).predictor.model
    assert isinstance(model, MetaModel)
    assert [a.name for a in model.agents_] == ["lightgbm", "logistic"]


def test_backtest_and_paper_replay_trade_the_meta_bundle(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    config, out = trained
    base = ["--config", str(config)]
    backtest = [*base, "backtest", "--strategy", "model", "--model", str(out), DATASET, "--json"]
    result = CliRunner().invoke(app, backtest)
    assert result.exit_code == 0, result.output
    assert "total_return" in json.dumps(json.loads(result.stdout))
    ledger = tmp_path / "paper.db"
    paper = [*base, "paper", "--replay", DATASET, "--model", str(out), "--bars", "2500"]
    result = CliRunner().invoke(app, [*paper, "--max-bars", "120", "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    with Ledger(ledger) as book:
        assert len(book.equity_curve()) == 120


def test_each_decision_explains_the_agents(trained: tuple[Path, Path]) -> None:
    _, out = trained
    bundle = load_bundle(out)
    candles = load_sample("BTC-USD-1h").iloc[TRAIN - 3100 : TRAIN + 5]
    settings = Settings.model_validate({"features": CONFIG["features"]})
    env = Environment(("BTC/USD",), "1h", settings, bundle, {"BTC/USD": candles.iloc[:-5]})
    feed = StrategyFeed(ModelBundleStrategy(), env)
    for i, row in enumerate(candles.iloc[-5:].itertuples()):
        bar = Bar("BTC/USD", row.Index, row.open, row.high, row.low, row.close, row.volume)
        feed.at(i, {"BTC/USD": bar})
    decision = feed.strategy.on_bar(feed.ctx)
    assert isinstance(decision, dict)
    target = decision["BTC/USD"]
    assert isinstance(target, Target) and target.info is not None
    info = target.info
    assert set(info["probabilities"]) == {"down", "flat", "up"}
    assert sum(info["probabilities"].values()) == pytest.approx(1.0)
    assert set(info["agents"]) == {"lightgbm", "logistic"}
    weights = [a["weight"] for a in info["agents"].values()]
    assert sum(weights) == pytest.approx(1.0) and info["combiner"] == "confidence"
    assert all(np.isclose(sum(a["view"].values()), 1.0) for a in info["agents"].values())
    assert isinstance(info["gated"], bool)


def test_meta_bar_by_bar_equals_the_batch_pipeline(trained: tuple[Path, Path]) -> None:
    from aitrader.engine.config import BrokerConfig
    from aitrader.strategy.run import RunSpec, check_strategy

    _, out = trained
    settings = Settings.model_validate({"features": CONFIG["features"]})
    data = {"BTC/USD": load_sample("BTC-USD-1h").iloc[TRAIN - 3100 : TRAIN + 150]}
    spec = RunSpec(
        BrokerConfig.from_costs(settings.costs), settings.risk, start=3100, bundle=load_bundle(out)
    )
    report = check_strategy(ModelBundleStrategy, data, settings, spec)
    assert report.difference is None and report.equal and report.decisions == 150
