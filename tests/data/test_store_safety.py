"""What the store lets a user reach: ``data query`` reads the stored series only (no other
file, no writes) unless ``--unsafe``, and names that become paths are checked first."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import candles
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import ConfigError, DataError

KEY = DatasetKey("binance", "BTC/USDT", "1h")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(tmp_path / "store")
    made.write(KEY, candles(10), "test")
    return made


def test_a_select_over_the_store_still_works(store: Store) -> None:
    result = store.query("SELECT symbol, count(*) AS n FROM candles GROUP BY symbol")
    assert result.to_dict(orient="records") == [{"symbol": "BTC/USDT", "n": 10}]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission"),
        ("SELECT * FROM read_text('/etc/hostname')", "Permission"),
        ("COPY (SELECT 1) TO '{outside}'", "a COPY statement is not run"),
        ("COPY (SELECT * FROM candles) TO '{inside}'", "a COPY statement is not run"),
        ("ATTACH '{outside}' AS other", "a ATTACH statement is not run"),
        ("INSTALL httpfs", "is not run"),
        ("SET enable_external_access = true", "a SET statement is not run"),
        ("SELECT 1; COPY (SELECT 1) TO '{outside}'", "a COPY statement is not run"),
    ],
)
def test_query_is_read_only_by_default(store: Store, tmp_path: Path, sql: str, error: str) -> None:
    outside, inside = tmp_path / "leak.csv", store.path(KEY).parent / "new.parquet"
    with pytest.raises(DataError, match=error):
        store.query(sql.format(outside=outside, inside=inside))
    assert not outside.exists() and not inside.exists()


def test_unsafe_lifts_it(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    store.query(f"COPY (SELECT * FROM candles) TO '{out}'", unsafe=True)
    assert len(out.read_text().splitlines()) == 11  # header and ten rows


def test_the_cli_says_how_to_lift_it(store: Store, tmp_path: Path) -> None:
    env = {"AITRADER__DATA__DIR": str(store.root)}
    sql = f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'"
    result = CliRunner().invoke(app, ["data", "query", sql], env=env)
    assert result.exit_code == 1
    assert "read-only" in result.output and "--unsafe" in result.output


@pytest.mark.parametrize(
    ("exchange", "symbol", "why"),
    [
        ("..", "BTC/USDT", "exchange '..' is a relative path"),
        ("a/b", "BTC/USDT", "exchange 'a/b' holds a path separator"),
        ("bin\\ance", "BTC/USDT", "holds a path separator"),
        ("binance", "..", "symbol '..' is a relative path"),
        ("binance", "BTC\nUSDT", "holds a control character"),
        ("bin\x00ance", "BTC/USDT", "holds a control character"),
    ],
)
def test_names_that_become_paths_are_checked(
    store: Store, exchange: str, symbol: str, why: str
) -> None:
    with pytest.raises(ConfigError, match=why):
        DatasetKey(exchange, symbol, "1h")


def test_data_import_refuses_a_name_that_climbs_out_of_the_store(tmp_path: Path) -> None:
    source = tmp_path / "prices.csv"
    candles(5).reset_index().rename(columns={"index": "timestamp"}).to_csv(source, index=False)
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["data", "import", str(source), "--exchange", "..", "--symbol", "..", "-t", "1h"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert "exchange '..' is a relative path" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prices.csv"]  # nothing written
