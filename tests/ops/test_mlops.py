"""Live model monitoring: /ml-metrics on realised outcomes, the decision-latency histogram,
the drift check (PSI/KS against the bundle's training reference) and its size multiplier."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ops_helpers import TOKEN_HASH, client
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import DRIFT, Ledger
from aitrader.models.drift import ks, psi, summarise
from aitrader.models.promotion import announce
from aitrader.models.registry import ModelBundle
from aitrader.models.store import ModelStore
from aitrader.ops.api import AppConfig, create_app
from aitrader.ops.auth import TokenChecker
from aitrader.ops.drift import drift_job
from aitrader.ops.mlmetrics import MlSource
from aitrader.ops.notify import Notice
from aitrader.ops.server import BackgroundServer
from aitrader.ops.watch import LedgerWatcher
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import Prepared, prepare

sys.path.insert(0, str(Path(__file__).parents[1] / "validation"))
from conftest import synthetic_candles

FEATURES = {"preset": "none", "extra": [{"name": "roc"}, {"name": "rsi"}, {"name": "zscore"}]}
FIGURES = {"accuracy": 0.56, "brier": 0.48, "ece": 0.03, "net_sharpe": 1.2, "dsr": 0.7}
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _settings(root: Path, **mlops: Any) -> Settings:
    return Settings(
        data={"dir": str(root / "data")},
        features=FEATURES,
        labels={"kind": "binary", "horizon": 1},
        models={"kind": "logistic"},
        validation={"min_train": 300, "test_size": 100},
        tracking={"enabled": False},
        mlops={"model": "btc", "ledger": str(root / "run.db"), **mlops},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Prepared, ModelBundle]:
    """A small logistic bundle (with its drift reference) and the rows it was made from."""
    settings = _settings(tmp_path_factory.mktemp("unused"))
    config = ExperimentConfig.from_settings(settings)
    candles = synthetic_candles(2500, seed=5, phi=0.3, vol=0.01)
    prepared = prepare(candles, config.features, config.labels, config.costs, "1h")
    return prepared, train_bundle(prepared, config)


@pytest.fixture
def store(tmp_path: Path, trained: tuple[Prepared, ModelBundle]) -> ModelBundle:
    """The bundle as champion v0001 of model ``btc`` under ``tmp_path``, with gate figures."""
    _, trained_bundle = trained
    bundle = replace(trained_bundle, info=replace(trained_bundle.info, metrics=FIGURES))
    models = ModelStore(tmp_path / "data" / "models")
    version = models.add("btc", bundle, {"metrics": FIGURES})
    models.promote("btc", version.id)
    return bundle


def _info(bundle: ModelBundle, features: dict[str, float], p_up: float) -> dict[str, Any]:
    probabilities = {"down": 1.0 - p_up, "up": p_up}
    return {"bundle": bundle.info.created, "features": features, "probabilities": probabilities}


def _record(
    ledger: Ledger,
    bundle: ModelBundle,
    rows: pd.DataFrame,
    prices: np.ndarray,
    p_up: np.ndarray | None = None,
) -> None:
    """One decision per hourly bar: its feature row, P(up) (default: 0.3 rising to 0.7)."""
    p_up = np.linspace(0.3, 0.7, len(rows)) if p_up is None else p_up
    for k, (features, price) in enumerate(zip(rows.to_dict("records"), prices, strict=True)):
        info = _info(bundle, features, float(p_up[k]))
        ledger.record_decisions(
            T0 + pd.Timedelta(hours=k), "model", [("BTC", 1.0, price, info)], 2.0
        )


def test_psi_and_ks_of_known_distributions() -> None:
    rng = np.random.default_rng(0)
    reference = summarise(rng.normal(0, 1, 20_000))
    same, shifted = rng.normal(0, 1, 2000), rng.normal(1, 1, 2000)
    assert psi(reference, same) < 0.02 and ks(reference, same) < 0.04
    assert psi(reference, shifted) > 0.5  # a one-sd shift: far beyond the 0.25 alert
    assert ks(reference, shifted) == pytest.approx(0.383, abs=0.04)  # Φ(0.5) − Φ(−0.5)
    assert np.isnan(psi(reference, np.array([np.nan])))


def test_ml_metrics_score_decisions_on_realised_outcomes(
    tmp_path: Path, store: ModelBundle
) -> None:
    prices = np.array([100.0, 101, 100, 102, 103, 101, 100, 104, 103, 105])
    p_up = np.linspace(0.3, 0.7, len(prices))
    with Ledger(tmp_path / "run.db") as ledger:
        features = pd.DataFrame({c: [0.0] * len(prices) for c in store.info.feature_columns})
        _record(ledger, store, features, prices)
        ledger.record_decisions(
            T0 - pd.Timedelta(hours=1), "sma-cross", [("BTC", 1.0, 99.0, None)], 1.0
        )
        source = MlSource(tmp_path / "data" / "models" / "btc", rolling=100)
        app = create_app(ledger, TokenChecker(TOKEN_HASH), AppConfig(ml=source))
        with BackgroundServer(app) as server, client(server.url) as http:
            body = http.get("/ml-metrics").json()
            assert client(server.url, token=None).get("/ml-metrics").status_code == 401
    up = (prices[1:] > prices[:-1]).astype(int)  # binary label, horizon 1: the next close
    predicted = (p_up[:-1] >= 0.5).astype(int)
    proba = np.c_[1 - p_up[:-1], p_up[:-1]]
    onehot = np.eye(2)[up]
    assert body["live"]["decisions"] == len(prices)  # the other strategy's row is not the model's
    assert body["live"]["scored"] == len(prices) - 1  # the last outcome is not known yet
    assert body["live"]["hit_rate"] == pytest.approx(np.mean(predicted == up))
    assert body["live"]["brier"] == pytest.approx(np.mean(((proba - onehot) ** 2).sum(axis=1)))
    assert sum(b["count"] for b in body["live"]["calibration"]) == len(prices) - 1
    assert body["backtest"] == FIGURES
    assert body["model"]["bundle"] == store.info.created and body["model"]["horizon"] == 1


def test_metrics_histogram_counts_every_decided_bar(tmp_path: Path, store: ModelBundle) -> None:
    with Ledger(tmp_path / "run.db") as ledger:
        for k, ms in enumerate([0.5, 3.0, 3.0, 40.0, 700.0]):
            rows = [("BTC", 0.5, 100.0, None), ("ETH", 0.5, 10.0, None)]
            ledger.record_decisions(T0 + pd.Timedelta(hours=k), "sma-cross", rows, ms)
        again = ledger.record_decisions(T0, "sma-cross", [("BTC", 0.5, 100.0, None)], 9.0)
        app = create_app(ledger, TokenChecker(TOKEN_HASH), AppConfig(cache_seconds=0))
        with BackgroundServer(app) as server, client(server.url, token=None) as http:
            text = http.get("/metrics").text
    assert again == 0  # a bar redone after a crash is recorded once
    found = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("aitrader_decision_latency_seconds")
    }
    name = "aitrader_decision_latency_seconds"
    assert found[name + "_count"] == 5  # one per bar, not per symbol
    assert found[name + "_sum"] == pytest.approx(0.7465)
    assert found[name + '_bucket{le="0.001"}'] == 1
    assert found[name + '_bucket{le="0.005"}'] == 3
    assert found[name + '_bucket{le="0.05"}'] == 4
    assert found[name + '_bucket{le="+Inf"}'] == 5


@pytest.fixture
def drifted(tmp_path: Path, store: ModelBundle, trained: tuple[Prepared, ModelBundle]) -> Path:
    """The run's ledger with 200 decisions whose features moved far from the training rows."""
    prepared, _ = trained
    rows = prepared.X.iloc[-200:]
    shifted = rows + 3 * prepared.X.std()
    with Ledger(tmp_path / "run.db") as ledger:
        _record(ledger, store, shifted, np.full(len(rows), 100.0))
    return tmp_path


def test_drift_alert_scales_entries_until_the_next_retrain(
    drifted: Path, store: ModelBundle
) -> None:
    sent: list[str] = []
    settings = _settings(drifted, drift={"action": "scale", "size_multiplier": 0.5})
    line = drift_job(settings, sent.append)
    assert line.startswith("drift alert: model btc, 200 decisions")
    assert line.endswith("new entries sized ×0.5 until the next retrain") and sent == [line]
    with Ledger(drifted / "run.db") as ledger:
        state = ledger.load_state(DRIFT)
        event = ledger.events("drift")[-1]
    assert state is not None and state["size_multiplier"] == 0.5 and state["level"] == "alert"
    assert {f["name"] for f in state["report"]["features"]} == set(store.info.feature_columns)
    assert all(f["level"] == "alert" for f in state["report"]["features"])
    assert event.level == "error" and event.message == line
    with Ledger(drifted / "run.db") as ledger:  # the bot's watcher does not tell it again
        ledger.log_event("feed", "feed stalled", "warning")
        notices: list[Notice] = []
        LedgerWatcher(ledger, notices.append, from_start=True).poll()
    assert [n.text for n in notices] == ["warning feed: feed stalled"]
    # a later check keeps the scaling (until the next retrain); a new champion clears it
    alert_only = _settings(drifted, drift={"action": "alert"})
    assert drift_job(alert_only, sent.append).endswith("until the next retrain")
    announce(settings, sent.append, "model btc: v0002 promoted", {"champion_changed": True})
    with Ledger(drifted / "run.db") as ledger:
        cleared = ledger.load_state(DRIFT)
    assert cleared is not None and cleared["size_multiplier"] == 1.0


def test_drift_is_ok_on_the_training_distribution(
    tmp_path: Path, store: ModelBundle, trained: tuple[Prepared, ModelBundle]
) -> None:
    """Fresh bars of the same process the bundle was trained on: nothing has drifted."""
    config = ExperimentConfig.from_settings(_settings(tmp_path))
    candles = synthetic_candles(2500, seed=6, phi=0.3, vol=0.01)
    fresh = prepare(candles, config.features, config.labels, config.costs, "1h")
    with Ledger(tmp_path / "run.db") as ledger:
        rows = fresh.X.iloc[-1500:]
        p_up = store.predictor.predict_proba(rows)[:, -1]  # what the model says on them
        _record(ledger, store, rows, np.full(len(rows), 100.0), p_up)
    sent: list[str] = []
    line = drift_job(_settings(tmp_path, drift={"window": 2000}), sent.append)
    assert line.startswith("drift ok: model btc") and sent == []
    with Ledger(tmp_path / "run.db") as ledger:
        state = ledger.load_state(DRIFT)
    assert state is not None and state["size_multiplier"] == 1.0


def test_an_older_bundle_without_a_reference_gets_a_clear_message(
    tmp_path: Path, trained: tuple[Prepared, ModelBundle]
) -> None:
    _, bundle = trained
    old = replace(bundle, info=replace(bundle.info, reference=None))
    models = ModelStore(tmp_path / "data" / "models")
    models.promote("btc", models.add("btc", old, {}).id)
    line = drift_job(_settings(tmp_path), print)
    assert "has no drift reference" in line and "retrain it" in line
    with pytest.raises(ConfigError, match=r"mlops\.model 'eth': no such model in the store"):
        drift_job(_settings(tmp_path, model="eth"), print)


def test_the_runner_applies_the_drift_multiplier_through_the_risk_manager(tmp_path: Path) -> None:
    """A paper run whose ledger holds a drift scaling: entries are resized by the risk manager
    (its verdicts name the drift); the same run without it is not scaled."""
    scaled, plain = tmp_path / "scaled.db", tmp_path / "plain.db"
    with Ledger(scaled) as ledger:
        ledger.save_state(DRIFT, {"size_multiplier": 0.5, "reason": "model drift (btc)"})
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    for path in (scaled, plain):
        args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "400", "--ledger", str(path)]
        result = CliRunner().invoke(app, [*args, "--json"], env=env)
        assert result.exit_code == 0, result.output
    with Ledger(scaled) as a, Ledger(plain) as b:
        first_a, first_b = a.risk_decisions().iloc[0], b.risk_decisions().iloc[0]
        assert len(a.decisions(1000)) == len(b.decisions(1000)) > 0  # every decision on record
        plain_reasons = " ".join(b.risk_decisions()["reason"])
    assert first_a["requested_qty"] == pytest.approx(first_b["requested_qty"])
    assert first_a["action"] == "resize" and "model drift (btc): size ×0.500" in first_a["reason"]
    assert first_a["approved_qty"] == pytest.approx(first_a["requested_qty"] * 0.5, rel=1e-9)
    assert first_b["approved_qty"] > first_a["approved_qty"]  # unscaled: only risk per trade
    assert "model drift" not in plain_reasons


@pytest.fixture
def drift_api(drifted: Path) -> Iterator[str]:
    drift_job(_settings(drifted), print)
    with Ledger(drifted / "run.db") as ledger:
        app = create_app(ledger, TokenChecker(TOKEN_HASH), AppConfig())
        with BackgroundServer(app) as server:
            yield server.url


def test_drift_is_shown_in_the_api(drift_api: str) -> None:
    with client(drift_api) as http:
        body = http.get("/drift").json()
    assert body["level"] == "alert" and body["size_multiplier"] == 1.0  # action: alert only
    assert body["report"]["samples"] == 200
    assert body["message"].startswith("drift alert: model btc")
    text = client(drift_api, token=None).get("/metrics").text
    assert "aitrader_drift_level 2.0" in text and "aitrader_size_multiplier 1.0" in text
