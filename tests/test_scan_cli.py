"""``scan`` and ``risk status | reset`` end to end on bundled data, via Typer apps of their own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.risk import app as risk_app
from aitrader.cli.scan import scan_command
from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.errors import ConfigError, DataError
from aitrader.features.indicators import atr
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.registry import save_bundle
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import JsonRiskStateStore
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare

app = typer.Typer()
app.command("scan")(scan_command)
app.add_typer(risk_app, name="risk")
runner = CliRunner()
BARS = 1500


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store"), "COLUMNS": "200"}


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return load_sample("BTC-USD-1h")


def scan_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = runner.invoke(app, ["scan", *args, "--bars", str(BARS), "--json"], env=env)
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def probability_file(path: Path, btc: pd.DataFrame, p_last: float) -> Path:
    """p_up 0.5 everywhere (no trade) except 0.9 on every 100th bar and ``p_last`` on the last."""
    p_up = np.full(BARS, 0.5)
    p_up[::100] = 0.9
    p_up[-1] = p_last
    frame = pd.DataFrame({"p_up": p_up}, index=btc.index[-BARS:])
    frame.to_parquet(path)
    return path


def test_default_datasets_with_the_labelled_baseline(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["scan", "--bars", str(BARS), "--history"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sample:BTC-USD-1h" in out and "sample:ETH-USD-1h" in out
    assert "Current trade plans" in out and "Trade-plan strategy backtested over history" in out
    assert "baseline sma-cross 10/30 — NOT a model" in out


def test_probability_file_plan_levels_and_history(
    tmp_path: Path, env: dict[str, str], btc: pd.DataFrame
) -> None:
    path = probability_file(tmp_path / "p.parquet", btc, 0.9)
    env = env | {"AITRADER__PLANS__MIN_TP1_NET": "0"}  # calm end of 2022: TP1 is close
    env |= {"AITRADER__PLANS__MAX_HOLD_BARS": "24"}  # each plan is over before the next signal
    payload = scan_json(["sample:BTC-USD-1h", "--probabilities", str(path), "--history"], env)
    (result,) = payload["results"]
    assert result["source"].startswith(f"probabilities file {path}")
    plan = result["plan"]
    tail = btc.iloc[-BARS:]
    close = float(tail["close"].iloc[-1])
    h, lo, c = (tail[k].to_numpy() for k in ("high", "low", "close"))
    a = float(atr(h, lo, c, 14)[-1])
    assert plan["side"] == 1 and plan["status"] == "accepted", plan
    assert plan["entry"] == pytest.approx(close, rel=1e-5)
    assert plan["stop"] == pytest.approx(close - 1.5 * a, rel=1e-5)
    assert plan["tp1"] == pytest.approx(close + 1.5 * a, rel=1e-5)
    assert plan["tp2"] == pytest.approx(close + 3.0 * a, rel=1e-5)
    # 1 % of 10 000 at risk per unit of band (×3 at p 0.9), capped at 1× leverage
    assert plan["qty"] == pytest.approx(min(3 * 100.0 / (1.5 * a), 10_000.0 / close), rel=1e-5)
    assert plan["leverage"] >= 1.0
    history = result["history"]
    # 16 bars at p ≥ 0.85; the first has no ATR yet, calm bars fail the EV gate
    assert 10 <= history["signals"] <= 15 and history["accepted"] <= history["signals"]
    # the engine's backtest of the plans: each accepted plan is one trade, entered by a signal
    # fill and left by the plan's exits (TP1, stops, the 24-bar time stop) — but the last
    # bar's, which has no bar left to fill in; the P&L is the backtest's, not a second model's
    exits = history["exits"]
    assert history["trades"] == history["accepted"] - 1 == exits["signal"] >= 5, history
    plan_exits = ("take_profit", "stop_loss", "time_stop")
    assert sum(exits.get(k, 0) for k in plan_exits) >= history["trades"]
    assert history["final_equity"] == pytest.approx(10_000.0 * (1 + history["total_return"]))
    assert 0.0 <= history["win_rate"] <= 1.0
    assert payload["kill_switch"] is None


def test_outer_band_override_changes_the_size(
    tmp_path: Path, env: dict[str, str], btc: pd.DataFrame
) -> None:
    path = probability_file(tmp_path / "p.parquet", btc, 0.85)
    small = env | {"AITRADER__RISK__SIZING__RISK_PCT": "0.001"}  # no leverage cap binds
    small |= {"AITRADER__PLANS__STOP_ATR": "4", "AITRADER__PLANS__MIN_TP1_NET": "0"}
    args = ["sample:BTC-USD-1h", "--probabilities", str(path)]
    base = scan_json(args, small)["results"][0]["plan"]
    moved = scan_json([*args, "--outer-band", "0.9:5"], small)["results"][0]["plan"]
    assert moved["qty"] == pytest.approx(base["qty"] * 2 / 3, rel=1e-5)  # band ×3 → ×2
    bad = runner.invoke(app, ["scan", *args, "--outer-band", "0.6"], env=env)
    assert isinstance(bad.exception, ConfigError) and "--outer-band" in str(bad.exception)


def test_model_bundle_probabilities(tmp_path: Path, env: dict[str, str], btc: pd.DataFrame) -> None:
    features = FeaturesConfig(
        preset="none", extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc"))
    )
    config = ExperimentConfig(
        features=features,
        labels=LabelConfig(kind="binary"),
        models=ModelConfig(lightgbm={"n_estimators": 10}),
    )
    prepared = prepare(btc.iloc[-4000:-BARS], features, config.labels, CostsConfig())
    path = save_bundle(train_bundle(prepared, config), tmp_path / "bundle")
    (result,) = scan_json(["sample:BTC-USD-1h", "--model", str(path)], env)["results"]
    assert result["source"].startswith(f"model bundle {path} (lightgbm")
    assert 0.0 < result["plan"]["p_up"] < 1.0


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (["--model", "m", "--probabilities", "p.parquet"], ConfigError, "not both"),
        (["--signal", "magic"], ConfigError, "--signal 'magic'"),
        (["--equity", "0"], ConfigError, "--equity"),
    ],
)
def test_bad_options(args: list[str], error: type, match: str, env: dict[str, str]) -> None:
    result = runner.invoke(app, ["scan", "sample:BTC-USD-1h", "--bars", "500", *args], env=env)
    assert isinstance(result.exception, error) and match in str(result.exception)


def test_bad_probability_files(tmp_path: Path, env: dict[str, str], btc: pd.DataFrame) -> None:
    two = runner.invoke(app, ["scan", "--probabilities", "p.parquet"], env=env)
    assert isinstance(two.exception, ConfigError) and "one data set" in str(two.exception)
    index = btc.index[-10:]
    pd.DataFrame({"up": np.full(10, 0.6)}, index=index).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"p_up": np.full(10, 1.5)}, index=index).to_parquet(tmp_path / "b.parquet")
    for name, match in (("a.parquet", "need a 'p_up' column"), ("b.parquet", "[0, 1]")):
        args = ["scan", "sample:BTC-USD-1h", "--probabilities", str(tmp_path / name)]
        result = runner.invoke(app, args, env=env)
        assert isinstance(result.exception, DataError) and match in str(result.exception)


def engaged_state(path: Path) -> None:
    manager = RiskManager(RiskConfig(state_path=path))
    manager.engage_kill_switch(pd.Timestamp("2024-05-01", tz="UTC"), "max drawdown 25.0% reached")


def test_scan_warns_when_the_kill_switch_is_engaged(tmp_path: Path, env: dict[str, str]) -> None:
    state = tmp_path / "risk.json"
    engaged_state(state)
    env = env | {"AITRADER__RISK__STATE_PATH": str(state)}
    payload = scan_json(["sample:BTC-USD-1h"], env)
    assert payload["kill_switch"]["engaged"] is True
    table = runner.invoke(app, ["scan", "sample:BTC-USD-1h", "--bars", "500"], env=env)
    assert table.exit_code == 0 and "KILL SWITCH ENGAGED" in table.stderr


def test_risk_status_and_reset(tmp_path: Path, env: dict[str, str]) -> None:
    state = tmp_path / "risk.json"
    engaged_state(state)
    status = runner.invoke(app, ["risk", "status", "--state", str(state), "--json"], env=env)
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)
    assert shown["kill_switch"] is True and shown["kill_reason"] == "max drawdown 25.0% reached"
    reset = runner.invoke(app, ["risk", "reset", "--state", str(state)], env=env)
    assert reset.exit_code == 0, reset.output
    assert "kill switch reset (was: max drawdown 25.0% reached)" in reset.stdout
    loaded = JsonRiskStateStore(state).load()
    assert loaded is not None and not loaded.kill_switch and loaded.kill_reason == ""
    again = runner.invoke(app, ["risk", "reset", "--state", str(state), "--json"], env=env)
    assert json.loads(again.stdout)["message"] == "kill switch was not engaged; nothing changed"
    unset = runner.invoke(app, ["risk", "reset"], env=env)  # no state file configured
    assert isinstance(unset.exception, ConfigError) and "nothing to reset" in str(unset.exception)
