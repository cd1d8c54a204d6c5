"""``aitrader features list`` and ``aitrader features build`` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.samples import load_sample
from aitrader.data.store import DatasetKey, Store
from aitrader.features import registry
from aitrader.features.storage import read_matrix

runner = CliRunner()


@pytest.fixture()
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AITRADER_CONFIG", raising=False)
    monkeypatch.setenv("AITRADER__DATA__DIR", str(tmp_path / "store"))
    return tmp_path / "store"


def test_list_json_shows_every_feature_with_params_and_warmup() -> None:
    result = runner.invoke(app, ["features", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert list(rows) == registry.names()
    assert rows["rsi"]["params"] == {"period": 14}
    assert rows["rsi"]["warmup"] == 14 and rows["rsi"]["columns"] == ["rsi_14"]
    assert rows["macd"]["warmup"] == 33
    assert rows["anchored_vwap"]["exact_warmup"] is False


def test_list_table() -> None:
    result = runner.invoke(app, ["features", "list"])
    assert result.exit_code == 0 and "garch" in result.output


def test_build_sample_writes_parquet_under_the_spec_hash(store_dir: Path) -> None:
    result = runner.invoke(app, ["features", "build", "sample:SPY-1d", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    path = Path(summary["path"])
    assert path == store_dir / "features" / "sample__SPY-1d" / f"{summary['spec_hash']}.parquet"
    frame, meta = read_matrix(path)
    assert summary["rows"] == len(frame) == 5241 - summary["dropped_warmup"]
    assert summary["columns"] == len(frame.columns) >= 60
    assert meta["spec_hash"] == summary["spec_hash"] and meta["dataset"] == "sample:SPY-1d"
    assert not list(path.parent.glob("*.tmp"))


def test_build_uses_the_configured_feature_set(store_dir: Path) -> None:
    Path("aitrader.yaml").write_text(
        "features:\n  preset: none\n  extra:\n    - {name: rsi, params: {period: 7}}\n"
        "    - {name: atr, timeframe: 4h}\n"
    )
    result = runner.invoke(app, ["features", "build", "sample:BTC-USD-1h"])
    assert result.exit_code == 0, result.output
    assert "x 2 columns" in result.output and "dropped" in result.output
    (path,) = (store_dir / "features" / "sample__BTC-USD-1h").glob("*.parquet")
    frame, _ = read_matrix(path)
    assert list(frame.columns) == ["rsi_7", "atr_14__4h"]


def test_build_stored_dataset(store_dir: Path) -> None:
    key = DatasetKey("kraken", "ETH/USD", "1h")
    Store(store_dir).write(key, load_sample("ETH-USD-1h").iloc[:3000], "test")
    result = runner.invoke(app, ["features", "build", str(key), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 2000 and summary["dropped_warmup"] == 1000
    assert Path(summary["path"]).parent.name == "kraken__ETH%2FUSD__1h"


def test_bad_feature_in_config_is_a_config_error(store_dir: Path) -> None:
    Path("aitrader.yaml").write_text("features:\n  extra:\n    - {name: nope}\n")
    result = runner.invoke(app, ["features", "build", "sample:BTC-USD-1h"])
    assert result.exit_code == 2
    assert "unknown feature 'nope'" in result.output
