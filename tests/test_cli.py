"""The CLI as a user meets it: help with examples, JSON output, exit codes, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import candles, write_csv
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.provenance import Write
from aitrader.data.store import DatasetKey, Store

runner = CliRunner()


def run_cli(
    home: Path, args: list[str], columns: int, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The installed ``aitrader`` in a fresh user's environment and terminal width (PYTHONPATH
    is kept so that a checkout runs its own code)."""
    exe = Path(sys.executable).with_name("aitrader")
    env = {"PATH": str(exe.parent), "HOME": str(home), "COLUMNS": str(columns)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [str(exe), *args],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store")}


def test_samples_json_lists_ranges_and_rows() -> None:
    result = runner.invoke(app, ["data", "samples", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["sample:BTC-USD-1h"]["rows"] == 52521
    assert rows["sample:ETH-USD-1h"]["rows"] == 52468
    assert rows["sample:SPY-1d"]["first"].startswith("1999-11-01")
    assert rows["sample:BTC-PERP-1m"]["licence"] == "LGPL-3.0"


@pytest.mark.parametrize(
    "command", [[], ["data"], ["data", "qc"], ["data", "import"], ["data", "resample"]]
)
def test_help_everywhere(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    if len(command) == 2:
        assert "Example" in result.output


def test_qc_json_on_sample(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["data", "qc", "sample:BTC-USD-1h", "--json"], env=env)
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["gaps"]["missing_bars"] == 63 and report["passed"] is True


def test_qc_on_bad_file_reports_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    df = candles(20)
    df.iloc[3, df.columns.get_loc("high")] = df["low"].iloc[3] / 2
    path = write_csv(tmp_path / "bad.csv", df)
    result = runner.invoke(app, ["data", "qc", str(path), "--json"], env=env)
    assert result.exit_code == 1
    report = json.loads(result.output)
    ohlc = next(c for c in report["checks"] if c["check"] == "ohlc")
    assert ohlc["count"] == 1 and ohlc["status"] == "reject" and "row 4" in ohlc["examples"][0]


def test_import_list_resample_query(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_csv(tmp_path / "m.csv", candles(240, freq="1min"))
    imported = runner.invoke(
        app,
        ["data", "import", str(path), "-s", "BTC/USDT", "-t", "1m", "-e", "binance", "--json"],
        env=env,
    )
    assert imported.exit_code == 0 and json.loads(imported.output)["added"] == 240
    resampled = runner.invoke(
        app, ["data", "resample", "binance:BTC/USDT:1m", "--to", "1h", "--save", "--json"], env=env
    )
    assert json.loads(resampled.output)["rows_out"] == 4
    listed = json.loads(runner.invoke(app, ["data", "list", "--json"], env=env).output)
    assert [d["dataset"] for d in listed] == ["binance:BTC/USDT:1h", "binance:BTC/USDT:1m"]
    query = runner.invoke(
        app,
        [
            "data",
            "query",
            "SELECT timeframe, count(*) AS n FROM candles GROUP BY 1 ORDER BY 1",
            "--json",
        ],
        env=env,
    )
    assert json.loads(query.output) == [{"timeframe": "1h", "n": 4}, {"timeframe": "1m", "n": 240}]


def test_unknown_dataset_and_usage_errors(env: dict[str, str]) -> None:
    """One rule: every name or value the user got wrong is a usage error, exit code 2."""
    missing = runner.invoke(app, ["data", "qc", "binance:NOPE/USDT:1h"], env=env)
    assert missing.exit_code == 2 and "no stored data set binance:NOPE/USDT:1h" in missing.output
    unknown = runner.invoke(app, ["data", "qc", "sample:DOGE"], env=env)
    assert unknown.exit_code == 2 and "sample:BTC-USD-1h" in unknown.output
    timeframe = runner.invoke(app, ["data", "resample", "sample:SPY-1d", "--to", "7x"], env=env)
    assert timeframe.exit_code == 2 and "unknown timeframe '7x'" in timeframe.output
    bad_name = runner.invoke(app, ["data", "qc", "nonsense"], env=env)
    assert bad_name.exit_code == 2 and "unknown data set 'nonsense'" in bad_name.output
    usage = runner.invoke(app, ["data", "resample", "sample:SPY-1d"], env=env)
    assert usage.exit_code == 2
    bad_level = runner.invoke(app, ["--log-level", "LOUD", "data", "samples"], env=env)
    assert bad_level.exit_code == 2


@pytest.mark.slow
def test_quick_demo_runs_offline_and_writes_a_report(tmp_path: Path) -> None:
    user = DatasetKey("kraken", "BTC/USD", "1h")  # a user's own series: the demo leaves it alone
    store = Store(tmp_path / "data")
    store.write(user, candles(30, start="2023-01-01"), Write("ccxt:kraken", "download"))
    before = store.path(user).read_bytes()
    result = run_cli(tmp_path, ["demo", "--quick", "--json"], 200, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stderr  # with --json the steps go to stderr, the result to stdout
    assert "63 missing bars" in out and "81 columns" in out
    assert "Walk-forward LightGBM" in out and "Verdict" in out
    payload = json.loads(result.stdout)
    report = tmp_path / "data" / "reports" / "demo" / "report.html"
    assert payload["report"] == str(report.relative_to(tmp_path))
    html = report.read_text()
    for name in ("LightGBM walk-forward", "buy_and_hold", "sma_crossover"):
        assert name in html
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert payload["metrics"] == metrics
    assert set(metrics["benchmarks"]) == {"buy_and_hold", "sma_crossover"}
    assert metrics["zero_cost"] is False
    costs = metrics["fees_paid"] + metrics["slippage_paid"]
    assert metrics["costs_pct_of_initial"] == pytest.approx(100 * costs / metrics["initial_cash"])
    decisions = (report.parent / "risk_decisions.csv").read_text().splitlines()
    assert decisions[0].startswith("time,")
    if metrics["trades"]:  # it traded: costs were charged and every order passed the risk manager
        assert metrics["fees_paid"] > 0 and len(decisions) > 1
    else:  # it stayed flat: the demo says why, and does not call flat a win
        flat = " ".join(out.split())
        assert "never traded" in flat and "why: long and short disabled" in flat
        assert "beat buy-and-hold" not in flat
    assert store.path(user).read_bytes() == before
    stored = {str(m.key): m.source for m in store.list()}
    assert stored["sample-kraken:BTC/USD:1h"] == "sample:BTC-USD-1h"


@pytest.mark.parametrize("width", [80, 60])
def test_samples_table_fits_the_terminal_and_keeps_names_whole(tmp_path: Path, width: int) -> None:
    result = run_cli(tmp_path, ["data", "samples"], width)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width and "…" not in result.stdout
    for name in ("sample:BTC-USD-1h", "sample:ETH-USD-1h", "sample:SPY-1d", "sample:BTC-PERP-1m"):
        assert any(name in line.split() for line in lines), name
