"""``train``, ``evaluate`` and ``tune`` commands end to end on bundled data (JSON output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli import app as full_app
from aitrader.cli.models import evaluate_command, train_command, tune_command
from aitrader.data.samples import load_sample
from aitrader.data.store import DatasetKey, Store

CONFIG = """
data:
  dir: {data}
features:
  preset: none
  extra:
    - {{name: rsi}}
    - {{name: roc}}
    - {{name: trend_strength, params: {{window: 2}}}}
"""


DATASET = "kraken:BTC/USD:1h"


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Settings pointing at a store holding the first 8,000 bundled BTC hours."""
    path = tmp_path / "aitrader.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    head = load_sample("BTC-USD-1h").iloc[:8000]
    Store(tmp_path / "data").write(DatasetKey.parse(DATASET), head, "test")
    monkeypatch.setenv("AITRADER_CONFIG", str(path))
    return CliRunner()


def app() -> typer.Typer:
    cli = typer.Typer()
    cli.command("train")(train_command)
    cli.command("evaluate")(evaluate_command)
    cli.command("tune")(tune_command)
    return cli


def test_evaluate_reports_metrics_and_tracks(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app(), ["evaluate", DATASET, "-k", "logistic", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for key in ("accuracy", "log_loss", "brier_skill", "ece", "net_sharpe", "dsr", "pbo"):
        assert key in payload
    assert payload["model"] == "logistic" and payload["run_id"]
    assert (tmp_path / "data" / "mlflow.db").is_file()


def test_train_saves_a_bundle(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = runner.invoke(
        app(), ["train", DATASET, "-k", "majority", "-o", str(out), "--no-track", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["bundle"] == str(out) and (out / "bundle.json").is_file()
    assert payload["run_id"] is None


def test_train_uses_the_label_settings_and_tunes_signal_thresholds(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITRADER__LABELS__KIND", "binary")
    out = tmp_path / "bundle"
    args = ["train", DATASET, "-k", "logistic", "-o", str(out), "--no-track"]
    result = runner.invoke(app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["label"] == "binary_h1"
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["label"]["kind"] == "binary"
    tuned = payload["signal_thresholds"]
    assert tuned == meta["signal_thresholds"]
    assert (tuned["symbol"], tuned["timeframe"]) == ("BTC/USD", "1h")
    assert tuned["window"] == meta["calibration_window"]
    assert meta["train_window"][1] < tuned["window"][0]
    assert "min_ev" in tuned["tuned"] and tuned["min_trades"] == 30
    assert payload["will_trade"] == (tuned["tuned"]["min_ev"] is not None)
    assert payload["decision"].startswith("BTC/USD:1h: ")
    text = runner.invoke(app(), args, env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "BTC/USD:1h" in text.stdout


def test_train_says_when_a_bundle_would_never_trade_and_what_to_change(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On main ``train`` printed "long disabled, short disabled" and nothing else."""
    monkeypatch.setenv("AITRADER__SIGNALS__MIN_TRADES", "100000")
    args = ["train", DATASET, "-k", "logistic", "-o", str(tmp_path / "b"), "--no-track"]
    payload = json.loads(runner.invoke(app(), [*args, "--json"]).stdout)
    assert payload["will_trade"] is False
    assert "long and short disabled" in payload["decision"] and "to change" in payload["decision"]
    text = runner.invoke(app(), args, env={"COLUMNS": "300"})
    assert text.exit_code == 0, text.output
    flat = " ".join(text.stdout.split())
    assert "this bundle will not trade on BTC/USD:1h" in flat
    assert "needs ≥ 1 on ≥ 100000 trades" in flat and "to change: a longer label horizon" in flat
    backtest = ["backtest", "--strategy", "model", "--model", str(tmp_path / "b"), DATASET]
    ran = runner.invoke(full_app, backtest, env={"COLUMNS": "300"})
    assert ran.exit_code == 0, ran.output
    said = " ".join(ran.output.split())
    assert "no trades: the model bundle's decision trades neither side: BTC/USD:1h" in said
    assert "to change: a longer label horizon" in said
    as_json = runner.invoke(full_app, [*backtest, "--json"])
    reason = json.loads(as_json.stdout)["no_trades"]
    assert reason.startswith("the model bundle's decision trades neither side")
    paper = ["paper", "--replay", DATASET, "--bars", "20", "--model", str(tmp_path / "b")]
    replayed = runner.invoke(full_app, [*paper, "--ledger", str(tmp_path / "p.db")])
    assert replayed.exit_code == 0, replayed.output
    said = " ".join(replayed.output.split())
    assert "warning: this run will not trade: the model bundle's decision trades neither" in said


def test_tune_runs_trials(runner: CliRunner) -> None:
    result = runner.invoke(
        app(),
        ["tune", DATASET, "-k", "logistic", "-n", "2", "--no-track", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["trials"] == 2 and "C" in payload["best_params"]
    # the default study is this model's, on this data set and timeframe: studies never mix
    assert payload["study_name"] == "logistic-kraken_BTC_USD_1h-1h-log_loss"


def test_bad_model_kind_is_a_config_error(runner: CliRunner) -> None:
    result = runner.invoke(app(), ["train", DATASET, "-k", "nope"])
    assert result.exit_code != 0
    assert "--model-kind" in str(result.exception) and "kind" in str(result.exception)


def test_train_takes_the_kind_as_model_too_and_explains_a_bundle_given_there(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    args = ["train", DATASET, "--model", "majority", "-o", str(out), "--no-track", "--json"]
    result = runner.invoke(app(), args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "majority" and (out / "bundle.json").is_file()
    again = runner.invoke(app(), ["train", DATASET, "--model", str(out), "--no-track"])
    assert again.exit_code != 0
    message = " ".join(str(again.exception).split())
    assert f"{out} is a directory (a trained bundle?)" in message
    assert f"aitrader backtest --strategy model --model {out} DATASET" in message


@pytest.mark.slow
def test_an_agent_trains_on_the_features_it_needs_and_backtests(
    runner: CliRunner, tmp_path: Path
) -> None:
    from aitrader.cli.backtest import backtest_command
    from aitrader.models.registry import load_bundle

    out = tmp_path / "garch"
    args = ["train", DATASET, "-k", "garch", "-o", str(out), "--no-track", "--json"]
    result = runner.invoke(app(), args)
    assert result.exit_code == 0, result.output
    columns = load_bundle(out).predictor.feature_names
    assert columns[:3] == ("rsi_14", "roc_10", "trend_strength_2")  # the configured set ...
    assert columns[-1] == "lag_hl_47" and len(columns) == 3 + 96  # ... plus the 48-bar window
    cli = typer.Typer()
    cli.command("backtest")(backtest_command)
    cli.command("noop")(lambda: None)
    ran = runner.invoke(cli, ["backtest", DATASET, "--model", str(out), "--json"])
    assert ran.exit_code == 0, ran.output
    metrics = json.loads(ran.stdout)["metrics"]
    assert metrics["name"] == "model" and metrics["bars"] > 0 and metrics["final_equity"] > 0
