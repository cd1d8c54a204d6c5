"""Nothing overwrites stored bars without being asked: every path that writes to the store,
under a conflict and under a different source, plus history, delete and the sample namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import candles, write_csv
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.datasets import load_dataset
from aitrader.data.provenance import ConflictError, OnConflict, Write
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import DataError

KEY = DatasetKey("file", "BTC/USDT", "1h")
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"AITRADER__DATA__DIR": str(tmp_path / "store"), "COLUMNS": "200"}


def scaled(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = df.copy()
    out[["open", "high", "low", "close"]] *= factor
    return out


def test_store_write_stops_on_differing_bars_with_count_and_largest_difference(
    tmp_path: Path,
) -> None:
    store, df = Store(tmp_path), candles(50)
    store.write(KEY, df, "file:/a.csv")
    before = store.path(KEY).read_bytes()
    changed = df.copy()
    changed.iloc[10:13, changed.columns.get_loc("volume")] += 1.0
    changed.iloc[20, changed.columns.get_loc("close")] *= 1.02
    changed.iloc[20, changed.columns.get_loc("high")] *= 1.02
    with pytest.raises(ConflictError) as caught:
        store.write(KEY, changed, "file:/b.csv")
    message = str(caught.value)
    assert "4 bar(s) differ" in message and "Nothing was written" in message
    assert f"at {df.index[10].isoformat()}" in message and "volume" in message
    assert "--on-conflict keep" in message
    assert store.path(KEY).read_bytes() == before


def test_identical_rows_are_no_conflict_and_add_nothing(tmp_path: Path) -> None:
    store, df = Store(tmp_path), candles(30)
    store.write(KEY, df.iloc[:20], "file:/a.csv")
    done = store.write(KEY, df, "file:/a.csv")
    assert (done.added, done.conflicts, done.meta.rows) == (10, 0, 30)


@pytest.mark.parametrize("policy,factor", [(OnConflict.KEEP, 1.0), (OnConflict.REPLACE, 1.5)])
def test_keep_and_replace(tmp_path: Path, policy: OnConflict, factor: float) -> None:
    store, df = Store(tmp_path), candles(40)
    store.write(KEY, df.iloc[:30], "file:/a.csv")
    done = store.write(KEY, scaled(df, 1.5), Write("file:/b.csv", on_conflict=policy))
    assert done.conflicts == 30 and done.added == 10
    stored = store.read(KEY)
    assert stored["close"].iloc[:30].sum() == pytest.approx(df["close"].iloc[:30].sum() * factor)
    assert stored["close"].iloc[30:].sum() == pytest.approx(df["close"].iloc[30:].sum() * 1.5)
    assert store.metadata(KEY).history[-1]["conflicts"] == 30


def test_cli_reimport_with_other_prices_fails_then_keep_and_replace(
    tmp_path: Path, env: dict[str, str]
) -> None:
    df = candles(50)
    first = write_csv(tmp_path / "a.csv", df)
    second = write_csv(tmp_path / "b.csv", scaled(df, 1.5))
    base = ["data", "import", "-s", "BTC/USDT", "-t", "1h"]
    assert runner.invoke(app, [*base[:2], str(first), *base[2:]], env=env).exit_code == 0
    store = Store(tmp_path / "store")
    total = store.read(KEY)["close"].sum()
    failed = runner.invoke(app, [*base[:2], str(second), *base[2:]], env=env)
    assert failed.exit_code == 1
    assert "50 bar(s) differ" in failed.output and "+50.00%" in failed.output
    assert store.read(KEY)["close"].sum() == total
    kept = runner.invoke(
        app, [*base[:2], str(second), *base[2:], "--on-conflict", "keep", "--json"], env=env
    )
    assert json.loads(kept.output)["conflicts"] == 50
    assert store.read(KEY)["close"].sum() == total
    replaced = runner.invoke(
        app, [*base[:2], str(second), *base[2:], "--on-conflict", "replace"], env=env
    )
    assert replaced.exit_code == 0 and "50 differing bars replaced" in replaced.output
    assert store.read(KEY)["close"].sum() == pytest.approx(total * 1.5)


def test_import_into_a_downloaded_series_is_refused_unless_asked(
    tmp_path: Path, env: dict[str, str]
) -> None:
    store, df = Store(tmp_path / "store"), candles(60)
    key = DatasetKey("binance", "BTC/USDT", "1h")
    store.write(key, df.iloc[:30], Write("ccxt:binance", "download"))
    path = write_csv(tmp_path / "kraken.csv", df.iloc[30:])
    args = ["data", "import", str(path), "-s", "BTC/USDT", "-t", "1h", "-e", "binance"]
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 1
    assert "holds data from ccxt:binance; refusing to add rows from file:" in refused.output
    assert store.metadata(key).rows == 30
    allowed = runner.invoke(app, [*args, "--allow-other-source"], env=env)
    assert allowed.exit_code == 0, allowed.output
    meta = store.metadata(key)
    assert meta.rows == 60 and meta.source == "ccxt:binance"  # so `data sync` still syncs it
    assert [h["action"] for h in meta.history] == ["download", "import"]


def test_resample_save_under_conflict(tmp_path: Path, env: dict[str, str]) -> None:
    store, minutes = Store(tmp_path / "store"), candles(240, freq="1min")
    key = DatasetKey("file", "BTC/USDT", "1m")
    store.write(key, minutes, "file:/m.csv")
    args = ["data", "resample", str(key), "--to", "1h", "--save"]
    assert runner.invoke(app, args, env=env).exit_code == 0
    hourly = DatasetKey("file", "BTC/USDT", "1h")
    before = store.read(hourly)
    store.write(key, scaled(minutes, 2.0), Write("file:/m2.csv", on_conflict=OnConflict.REPLACE))
    failed = runner.invoke(app, args, env=env)
    assert failed.exit_code == 1 and "4 bar(s) differ" in failed.output
    pd.testing.assert_frame_equal(store.read(hourly), before)
    replaced = runner.invoke(app, [*args, "--on-conflict", "replace"], env=env)
    assert replaced.exit_code == 0
    assert store.read(hourly)["close"].sum() == pytest.approx(before["close"].sum() * 2)


def test_samples_resample_into_their_own_namespace(tmp_path: Path, env: dict[str, str]) -> None:
    store = Store(tmp_path / "store")
    user = DatasetKey("ftx", "BTC-PERP", "1h")
    store.write(user, candles(10, start="2022-01-01"), Write("ccxt:ftx", "download"))
    before = store.path(user).read_bytes()
    args = ["data", "resample", "sample:BTC-PERP-1m", "--to", "1h", "--save", "--json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["saved"] == "sample-ftx:BTC-PERP:1h"
    assert store.path(user).read_bytes() == before
    assert load_dataset("sample:BTC-USD-1h", store).exchange == "sample-kraken"


def test_history_lists_every_write_with_checksums(tmp_path: Path, env: dict[str, str]) -> None:
    df = candles(48)
    store = Store(tmp_path / "store")
    store.write(KEY, df.iloc[:24], Write("file:/a.csv", "import"))
    store.write(KEY, df.iloc[20:], Write("file:/b.csv", "import"))
    result = runner.invoke(app, ["data", "history", str(KEY), "--json"], env=env)
    payload = json.loads(result.output)
    assert [(h["source"], h["added"], h["rows"]) for h in payload["history"]] == [
        ("file:/a.csv", 24, 24),
        ("file:/b.csv", 24, 48),
    ]
    assert payload["history"][-1]["checksum"] == store.metadata(KEY).checksum
    table = runner.invoke(app, ["data", "history", str(KEY)], env=env)
    assert table.exit_code == 0 and "file:/b.csv" in table.output


def test_delete_asks_first(tmp_path: Path, env: dict[str, str]) -> None:
    store = Store(tmp_path / "store")
    store.write(KEY, candles(5), "file:/a.csv")
    declined = runner.invoke(app, ["data", "delete", str(KEY)], input="n\n", env=env)
    assert declined.exit_code == 1 and "was not deleted" in declined.output
    no_input = runner.invoke(app, ["data", "delete", str(KEY)], env=env)
    assert no_input.exit_code == 1 and store.exists(KEY)
    confirmed = runner.invoke(app, ["data", "delete", str(KEY)], input="y\n", env=env)
    assert confirmed.exit_code == 0 and not store.exists(KEY)
    store.write(KEY, candles(5), "file:/a.csv")
    assert runner.invoke(app, ["data", "delete", str(KEY), "--yes"], env=env).exit_code == 0
    assert not store.exists(KEY)
    missing = runner.invoke(app, ["data", "delete", str(KEY), "--yes"], env=env)
    assert missing.exit_code == 2 and "no stored data set" in missing.output


def test_calendar_is_fixed_once_stored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write(KEY, candles(5), Write("file:/a.csv", calendar="crypto"))
    with pytest.raises(DataError, match="stored with the crypto calendar, not equity"):
        store.write(KEY, candles(8), Write("file:/a.csv", calendar="equity"))
