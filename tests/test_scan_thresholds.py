"""``scan --model`` applies the decision the bundle tuned on its calibration slice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.scan import scan_command
from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.registry import save_bundle
from aitrader.strategy.config import SignalConfig
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import Prepared, prepare

app = typer.Typer()
app.command()(scan_command)  # the only command: invoked without its name
runner = CliRunner()
BARS = 1500
FEATURES = FeaturesConfig(preset="none", extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc")))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store"), "COLUMNS": "250"}


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    """The BTC hours before the scanned window (the bundle never sees the bars it scans)."""
    btc: pd.DataFrame = load_sample("BTC-USD-1h")
    return prepare(btc.iloc[-4000:-BARS], FEATURES, LabelConfig(kind="binary"), CostsConfig())


def bundle(prepared: Prepared, path: Path, min_trades: int, min_ev: float | None = None) -> Path:
    """A trained bundle; with ``min_ev``, its tuned decision replaced by one trading both sides
    from that EV margin (BTC hours rarely pay for their costs, so the real tuning stays flat)."""
    config = ExperimentConfig(
        features=FEATURES,
        labels=LabelConfig(kind="binary"),
        models=ModelConfig(kind="logistic"),
        signals=SignalConfig(min_trades=min_trades),
    )
    trained = train_bundle(prepared, config, "BTC/USD", "1h")
    if min_ev is not None:
        stored = trained.info.thresholds()
        assert stored is not None
        tuned = stored.tuned.model_copy(
            update={"min_ev": min_ev, "allow_long": True, "allow_short": True, "notes": ()}
        )
        info = replace(
            trained.info,
            signal_thresholds=stored.model_copy(update={"tuned": tuned}).model_dump(mode="json"),
        )
        trained = replace(trained, info=info)
    return save_bundle(trained, path)


def scan(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--bars", str(BARS), "--json"], env=env)
    assert result.exit_code == 0, result.output
    (out,) = json.loads(result.stdout)["results"]
    return dict(out)


def test_tuned_decision_replaces_the_configured_one(
    prepared: Prepared, tmp_path: Path, env: dict[str, str]
) -> None:
    path = bundle(prepared, tmp_path / "low", min_trades=30, min_ev=-0.002)
    tuned = json.loads((path / "bundle.json").read_text())["signal_thresholds"]
    assert tuned["symbol"] == "BTC/USD" and tuned["timeframe"] == "1h"
    assert tuned["tuned"]["min_ev"] == -0.002
    out = scan(["sample:BTC-USD-1h", "--model", str(path)], env)
    assert out["thresholds"] == {
        "long_threshold": 0.55,
        "short_threshold": 0.55,
        "min_ev": -0.002,
        "allow_long": True,
        "allow_short": True,
    }
    assert out["thresholds_note"].startswith(
        "tuned thresholds in use: BTC/USD:1h: long and short when EV net of costs > -0.2000%"
    )
    table = runner.invoke(app, ["sample:BTC-USD-1h", "--model", str(path)], env=env)
    assert table.exit_code == 0, table.output
    assert "thresholds: tuned thresholds in use: BTC/USD:1h" in table.stdout

    # another symbol keeps the configured thresholds, and says why
    eth = scan(["sample:ETH-USD-1h", "--model", str(path)], env)
    assert eth["thresholds"]["min_ev"] == SignalConfig().min_ev == 0.0
    assert "tuned thresholds are for BTC/USD:1h" in eth["thresholds_note"]


def test_a_decision_that_never_pays_stays_flat_and_says_why(
    prepared: Prepared, tmp_path: Path, env: dict[str, str]
) -> None:
    path = bundle(prepared, tmp_path / "high", min_trades=100_000)
    tuned = json.loads((path / "bundle.json").read_text())["signal_thresholds"]["tuned"]
    assert tuned["min_ev"] is None
    out = scan(["sample:BTC-USD-1h", "--model", str(path), "--history"], env)
    assert out["thresholds"]["allow_long"] is False and out["thresholds"]["allow_short"] is False
    assert "no trades" in out["thresholds_note"] and "to change" in out["thresholds_note"]
    assert out["plan"]["side"] == 0 and out["plan"]["reason"] == "below threshold"
    assert out["history"]["signals"] == 0
