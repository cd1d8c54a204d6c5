"""Imports hold to the timeframe, its grid, the timestamp unit and the QC policies, and agree
with `data qc` on the same file; the calendar is stored with the series."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import candles, write_csv
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Policy, QCConfig
from aitrader.data.datasets import load_dataset
from aitrader.data.store import DatasetKey, Store

runner = CliRunner()
KEY = DatasetKey("file", "BTC/USDT", "1h")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store"), "COLUMNS": "200"}


def unix_csv(path: Path, df: pd.DataFrame, divisor: int) -> Path:
    raw = df.reset_index()
    raw["timestamp"] = df.index.as_unit("ns").asi8 // divisor
    raw.to_csv(path, index=False)
    return path


def import_args(path: Path, *extra: str, timeframe: str = "1h") -> list[str]:
    return ["data", "import", str(path), "-s", "BTC/USDT", "-t", timeframe, *extra]


@pytest.mark.parametrize(
    "divisor,unit,fits",
    [(10**9, "ms", "s"), (10**6, "s", "ms"), (10**6, "ns", "ms"), (10**3, "ms", "us")],
)
def test_a_wrong_timestamp_unit_is_a_clear_error_not_1970(
    tmp_path: Path, env: dict[str, str], divisor: int, unit: str, fits: str
) -> None:
    path = unix_csv(tmp_path / "u.csv", candles(50, start="2021-03-01"), divisor)
    result = runner.invoke(app, import_args(path, "--timestamp-unit", unit), env=env)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"--timestamp-unit {unit}:" in text and f"are unix {fits}" in text
    assert "first bar 2021-03-01 00:00 UTC" in text and "Traceback" not in text
    assert not Store(tmp_path / "store").exists(KEY)


@pytest.mark.parametrize("divisor", [1, 10**3, 10**6, 10**9])
def test_unit_is_detected_from_the_values(
    tmp_path: Path, env: dict[str, str], divisor: int
) -> None:
    df = candles(30, start="2021-03-01")
    path = unix_csv(tmp_path / "u.csv", df, divisor)
    result = runner.invoke(app, [*import_args(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["first"] == "2021-03-01T00:00:00+00:00"


def test_hourly_file_imported_as_minutes_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_csv(tmp_path / "h.csv", candles(50))
    result = runner.invoke(app, import_args(path, timeframe="1m"), env=env)
    assert result.exit_code == 1
    assert "the bars are usually 1h apart, not 1m" in " ".join(result.output.split())
    qc = runner.invoke(app, ["data", "qc", str(path), "-t", "1m"], env=env)
    assert qc.exit_code == 1 and "usually 1h apart" in " ".join(qc.output.split())


def test_off_grid_bars_rejected_by_import_and_qc_alike(tmp_path: Path, env: dict[str, str]) -> None:
    df = candles(50)
    stamps = df.index.to_list()
    stamps[7] = stamps[7] + pd.Timedelta(minutes=17)
    df.index = pd.DatetimeIndex(stamps, name="timestamp")
    path = write_csv(tmp_path / "g.csv", df)
    imported = runner.invoke(app, import_args(path), env=env)
    assert imported.exit_code == 1 and "off_grid in 1 row(s), e.g. row 8" in imported.output
    qc = runner.invoke(app, ["data", "qc", str(path), "--json"], env=env)
    off = next(c for c in json.loads(qc.output)["checks"] if c["check"] == "off_grid")
    assert qc.exit_code == 1 and off["status"] == "reject" and off["count"] == 1


def test_gaps_policy_reject_applies_to_import_as_to_qc(tmp_path: Path, env: dict[str, str]) -> None:
    df = candles(50).drop(candles(50).index[20:23])
    path = write_csv(tmp_path / "gappy.csv", df)
    strict = {**env, "AITRADER__QC__GAPS": "reject"}
    qc = runner.invoke(app, ["data", "qc", str(path)], env=strict)
    imported = runner.invoke(app, import_args(path), env=strict)
    assert qc.exit_code == imported.exit_code == 1
    assert "gaps in 1 row(s)" in " ".join(imported.output.split())
    assert not Store(tmp_path / "store").exists(KEY)
    assert runner.invoke(app, import_args(path), env=env).exit_code == 0  # default: flag


def test_duplicates_dropped_by_import_as_qc_says(tmp_path: Path, env: dict[str, str]) -> None:
    df = candles(30)
    doubled = pd.concat([df.iloc[:10], df.iloc[[9]], df.iloc[10:]])
    path = write_csv(tmp_path / "dup.csv", doubled)
    qc = runner.invoke(app, ["data", "qc", str(path), "--json"], env=env)
    dup = next(c for c in json.loads(qc.output)["checks"] if c["check"] == "duplicates")
    assert qc.exit_code == 0 and dup["count"] == 1 and dup["policy"] == "drop"
    imported = runner.invoke(app, [*import_args(path), "--json"], env=env)
    assert imported.exit_code == 0 and json.loads(imported.output)["rows"] == 30
    strict = {**env, "AITRADER__QC__DUPLICATES": "reject"}
    assert runner.invoke(app, ["data", "qc", str(path)], env=strict).exit_code == 1
    other = DatasetKey("file", "ETH/USDT", "1h")
    args = ["data", "import", str(path), "-s", "ETH/USDT", "-t", "1h"]
    assert runner.invoke(app, args, env=strict).exit_code == 1
    assert not Store(tmp_path / "store").exists(other)


def test_flag_is_refused_for_rows_the_store_cannot_hold(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="store cannot hold"):
        QCConfig(duplicates=Policy.FLAG)
    path = write_csv(tmp_path / "ok.csv", candles(5))
    result = runner.invoke(app, import_args(path), env={**env, "AITRADER__QC__OHLC": "flag"})
    assert result.exit_code == 2 and "store cannot hold" in " ".join(result.output.split())


def test_weekday_daily_data_is_stored_as_equity(tmp_path: Path, env: dict[str, str]) -> None:
    days = candles(300, start="2020-01-01", freq="1D")
    weekdays = days[days.index.day_of_week < 5]
    path = write_csv(tmp_path / "spy.csv", weekdays)
    args = ["data", "import", str(path), "-s", "SPY", "-t", "1d", "-e", "nyse", "--json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["calendar"] == "equity"
    store = Store(tmp_path / "store")
    assert load_dataset("nyse:SPY:1d", store).calendar == "equity"
    crypto = write_csv(tmp_path / "btc.csv", days)
    args = ["data", "import", str(crypto), "-s", "BTC/USD", "-t", "1d", "-e", "x", "--json"]
    assert json.loads(runner.invoke(app, args, env=env).output)["calendar"] == "crypto"
    forced = ["data", "import", str(path), "-s", "QQQ", "-t", "1d", "--calendar", "crypto"]
    assert runner.invoke(app, forced, env=env).exit_code == 0
    assert load_dataset("file:QQQ:1d", store).calendar == "crypto"
