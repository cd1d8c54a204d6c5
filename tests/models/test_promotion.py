"""The retrain promotion gate and the versioned model store, end to end on a small data set.

The data has AR(1) momentum, so a logistic model on momentum features forecasts better than
the majority-class baseline: a logistic challenger beats a majority champion and is promoted;
a majority challenger against the logistic champion is refused and the champion stays. Every
decision is a ``model`` event in the ledger and a notification; rollback restores the champion
before. Costs stay on (the defaults).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import DRIFT, Ledger
from aitrader.models.promotion import GATED, gate, retrain_job
from aitrader.models.registry import load_bundle, load_info
from aitrader.models.store import ModelStore
from aitrader.ops.mlops_config import GateConfig

sys.path.insert(0, str(Path(__file__).parents[1] / "validation"))
from conftest import synthetic_candles

FEATURES = {"preset": "none", "extra": [{"name": "roc"}, {"name": "rsi"}, {"name": "zscore"}]}


def _settings(root: Path, kind: str) -> Settings:
    return Settings(
        data={"dir": str(root / "data")},
        features=FEATURES,
        labels={"kind": "binary", "horizon": 1},
        models={"kind": kind},
        validation={"min_train": 500, "test_size": 150},
        tracking={"enabled": False},
        signals={"min_trades": 3},  # short calibration slices: a decision on a few trades
        mlops={"model": "btc", "retrain": {"dataset": str(root / "BTCUSDT.csv"), "folds": 2}},
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three retrains: majority (first champion), logistic (promoted), majority (refused)."""
    root = tmp_path_factory.mktemp("promotion")
    synthetic_candles(1200, seed=3, phi=0.6, vol=0.02).to_csv(root / "BTCUSDT.csv")
    sent: list[str] = []
    lines = [retrain_job(_settings(root, kind), sent.append) for kind in ("majority", "logistic")]
    after_better = ModelStore(root / "data" / "models").pointer("btc")
    lines.append(retrain_job(_settings(root, "majority"), sent.append))
    return {"root": root, "lines": lines, "sent": sent, "after_better": after_better}


def test_a_better_challenger_is_promoted(history: dict[str, Any]) -> None:
    assert history["lines"][0].startswith("model btc: v0001 promoted (no champion to beat)")
    assert history["lines"][1].startswith("model btc: v0002 promoted over v0001")
    assert history["after_better"]["version"] == "v0002"
    assert history["after_better"]["history"] == ["v0001"]
    store = ModelStore(history["root"] / "data" / "models")
    better, worse = store.version("btc", "v0002"), store.version("btc", "v0001")
    assert better.metrics["brier"] < worse.metrics["brier"]
    assert better.meta["gate"]["basis"] == "re-scored on the same window"


def test_a_worse_challenger_is_refused_and_the_champion_stays(history: dict[str, Any]) -> None:
    root = history["root"]
    line = history["lines"][2]
    assert line.startswith("model btc: challenger v0003 refused, v0002 stays champion")
    assert "brier" in line and "(worse)" in line
    store = ModelStore(root / "data" / "models")
    assert store.champion("btc").id == "v0002"  # type: ignore[union-attr]
    refused = store.version("btc", "v0003")
    assert refused.meta["gate"]["promoted"] is False and refused.meta["gate"]["champion"] == "v0002"
    # the champion's figures are the logistic model's, re-scored on the same latest window
    assert refused.meta["gate"]["champion_figures"]["brier"] < refused.metrics["brier"]
    # `--model <store>/btc` trades the champion
    info = load_info(root / "data" / "models" / "btc")
    assert (
        info.model["kind"] == "logistic" and info.metrics == store.version("btc", "v0002").metrics
    )
    assert info.reference is not None and set(info.reference["features"]) == set(
        info.feature_columns
    )
    assert load_bundle(root / "data" / "models" / "btc").info == info


def test_every_decision_is_a_ledger_event_and_a_notification(history: dict[str, Any]) -> None:
    assert history["sent"] == history["lines"]
    path = history["root"] / "data" / "models" / "btc" / "events.db"
    with Ledger(path) as ledger:
        events = ledger.events("model")
    assert [e.message for e in events] == history["lines"]
    assert [e.payload["promoted"] for e in events] == [True, True, False]
    assert events[2].payload["champion"] == "v0002" and events[2].payload["version"] == "v0003"


def test_cli_lists_promotes_and_rolls_back(history: dict[str, Any], tmp_path: Path) -> None:
    root = history["root"]
    settings = _settings(root, "logistic")
    config = tmp_path / "aitrader.yaml"
    config.write_text(json.dumps(settings.model_dump(mode="json", include={"data", "mlops"})))
    run = CliRunner()
    base = ["--config", str(config), "models"]

    listed = run.invoke(app, [*base, "list", "btc", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["version"] for r in rows] == ["v0001", "v0002", "v0003"]
    assert [r["champion"] for r in rows] == [False, True, False]

    back = run.invoke(app, [*base, "rollback", "btc", "--reason", "live hit rate fell"])
    assert back.exit_code == 0, back.output
    assert "rolled back from v0002 to v0001 (live hit rate fell)" in back.output
    store = ModelStore(root / "data" / "models")
    assert store.pointer("btc")["version"] == "v0001" and store.pointer("btc")["history"] == []
    again = run.invoke(app, [*base, "rollback", "btc"])
    assert again.exit_code != 0 and "no previous champion" in again.output

    promoted = run.invoke(app, [*base, "promote", "btc", "v0003"])
    assert promoted.exit_code == 0, promoted.output
    assert store.pointer("btc") | {"updated": None} == {
        "version": "v0003",
        "history": ["v0001"],
        "updated": None,
    }
    unknown = run.invoke(app, [*base, "promote", "btc", "v0042"])
    assert unknown.exit_code != 0 and "stored: v0001, v0002, v0003" in unknown.output

    with Ledger(root / "data" / "models" / "btc" / "events.db") as ledger:
        events = ledger.events("model")
        drift = ledger.load_state(DRIFT)
    assert [e.payload["action"] for e in events[-2:]] == ["rollback", "promote"]
    assert drift is not None and drift["size_multiplier"] == 1.0  # a new champion: no scaling
    # put the champion back for the other tests of the module
    store.promote("btc", "v0002")


def test_gate_compares_each_figure_within_its_tolerance() -> None:
    champion = {"dsr": 0.6, "brier": 0.40, "net_sharpe": 1.0}
    same = gate(champion, champion, GateConfig())
    assert same.promote and len(same.reasons) == len(GATED)
    worse_brier = gate(champion | {"brier": 0.41}, champion, GateConfig())
    assert not worse_brier.promote and "brier 0.41 vs 0.4 (worse)" in worse_brier.reasons
    tolerated = gate(champion | {"brier": 0.41}, champion, GateConfig(brier_tolerance=0.02))
    assert tolerated.promote
    no_dsr = gate(champion | {"dsr": float("nan")}, champion, GateConfig())
    assert not no_dsr.promote and "dsr: challenger has none (champion 0.6)" in no_dsr.reasons


def test_retrain_needs_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mlops\.retrain\.dataset is not set"):
        retrain_job(Settings(data={"dir": str(tmp_path)}), print)


def test_schedule_run_retrain_goes_through_the_gate(
    history: dict[str, Any], tmp_path: Path
) -> None:
    """``aitrader schedule run retrain``: the scheduler's job runs the same gate (the champion's
    own config re-scored beside the challenger) and names its verdict; runs last in the module."""
    root = history["root"]
    config = tmp_path / "bot.yaml"
    sections = {"data", "features", "labels", "models", "validation", "signals"}
    values = _settings(root, "logistic").model_dump(
        mode="json", include=sections, exclude_defaults=True
    )
    values |= {"tracking": {"enabled": False}, "mlops": {"model": "btc", "retrain": {
        "dataset": str(root / "BTCUSDT.csv"), "folds": 2}}}  # fmt: skip
    config.write_text(json.dumps(values))
    result = CliRunner().invoke(app, ["schedule", "run", "retrain", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # the challenger has the champion's config: the same figures on the same window, not worse
    assert "model btc: v0004 promoted over v0002" in result.output
    assert ModelStore(root / "data" / "models").pointer("btc")["version"] == "v0004"
