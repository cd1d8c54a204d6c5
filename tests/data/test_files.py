"""File import: formats, timestamps, zones, and a clear error for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import candles, write_csv
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.data.files import FileFormat, import_file, read_candles
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import DataError

KEY = DatasetKey("file", "BTC/USDT", "1h")


def test_iso_csv_round_trip(tmp_path: Path) -> None:
    df = candles(24)
    got = read_candles(write_csv(tmp_path / "a.csv", df))
    pd.testing.assert_frame_equal(got, df)


@pytest.mark.parametrize(
    "unit,scale", [("s", 10**9), ("ms", 10**6), ("auto", 10**6), ("auto", 10**9)]
)
def test_unix_timestamps(tmp_path: Path, unit: str, scale: int) -> None:
    df = candles(24)
    raw = df.reset_index()
    raw["timestamp"] = df.index.as_unit("ns").asi8 // scale
    raw.to_csv(tmp_path / "u.csv", index=False)
    got = read_candles(tmp_path / "u.csv", FileFormat(timestamp_unit=unit))
    pd.testing.assert_frame_equal(got, df)


def test_column_mapping_parquet_and_timezone(tmp_path: Path) -> None:
    df = candles(24)
    raw = pd.DataFrame(
        {
            "Date": df.index.tz_convert("US/Eastern").tz_localize(None).strftime("%Y-%m-%d %H:%M"),
            "O": df["open"].to_numpy(),
            "H": df["high"].to_numpy(),
            "L": df["low"].to_numpy(),
            "C": df["close"].to_numpy(),
            "Vol": df["volume"].to_numpy(),
        }
    )
    raw.to_parquet(tmp_path / "m.parquet")
    mapping = {
        "timestamp": "Date",
        "open": "O",
        "high": "H",
        "low": "L",
        "close": "C",
        "volume": "Vol",
    }
    got = read_candles(tmp_path / "m.parquet", FileFormat(mapping, "iso", "US/Eastern"))
    pd.testing.assert_frame_equal(got, df)


def test_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T02:00:00+02:00,1,2,0.5,1.5,10\n"
        "2024-01-01T01:00:00Z,1.5,2,1,1.8,10\n"
    )
    got = read_candles(tmp_path / "o.csv")
    assert list(got.index.strftime("%H:%M")) == ["00:00", "01:00"]


def _bad_file(tmp_path: Path, kind: str) -> Path:
    df = candles(10)
    path = write_csv(tmp_path / f"{kind}.csv", df)
    lines = path.read_text().splitlines()
    if kind == "malformed":
        lines[4] = lines[4] + ",1,2"
    elif kind == "nan":
        cells = lines[4].split(",")
        cells[4] = ""
        lines[4] = ",".join(cells)
    elif kind == "text":
        cells = lines[4].split(",")
        cells[2] = "abc"
        lines[4] = ",".join(cells)
    elif kind == "negative":
        cells = lines[4].split(",")
        cells[1:5] = ["-1", "-1", "-1", "-1"]
        lines[4] = ",".join(cells)
    elif kind == "missing_column":
        lines = [",".join(line.split(",")[:5]) for line in lines]
    elif kind == "unsorted":
        lines[4], lines[5] = lines[5], lines[4]
    elif kind == "duplicate":
        lines[5] = lines[4]
    elif kind == "bad_time":
        lines[4] = "yesterday" + lines[4][lines[4].index(",") :]
    path.write_text("\n".join(lines) + "\n")
    return path


BAD_CASES = {
    "malformed": r"malformed\.csv: cannot be parsed .*line 5",
    "nan": r"nan\.csv: quality checks rejected .*missing_values in 1 row\(s\), e\.g\. row 4",
    "text": r"text\.csv: row 4, field 'high': 'abc' is not a number",
    "negative": r"negative\.csv: quality checks rejected .*non_positive in 1 row.*, e\.g\. row 4",
    "missing_column": r"missing_column\.csv: missing column 'volume'",
    "unsorted": r"unsorted\.csv: quality checks rejected .*non_increasing in 1 row.*e\.g\. row 5",
    "bad_time": r"bad_time\.csv: row 4, field 'timestamp': 'yesterday' is not",
}


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_bad_input_names_file_row_field_and_leaves_store_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    store = Store(tmp_path / "store")
    store.write(KEY, candles(5, start="2023-06-01"), "file:/data/before.csv")
    before = store.path(KEY).read_bytes()
    path = _bad_file(tmp_path, kind)
    with pytest.raises(DataError, match=BAD_CASES[kind]):
        import_file(store, path, KEY)
    assert store.path(KEY).read_bytes() == before
    assert [p.name for p in store.path(KEY).parent.iterdir() if not p.name.startswith(".")] == [
        "1h.parquet"
    ]


def test_cli_import_bad_file_exits_1_and_store_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  dir: {tmp_path / 'store'}\n")
    runner = CliRunner()
    good = write_csv(tmp_path / "good.csv", candles(10))
    ok = runner.invoke(
        app, ["-c", str(config), "data", "import", str(good), "-s", "BTC/USDT", "-t", "1h"]
    )
    assert ok.exit_code == 0, ok.output
    store = Store(tmp_path / "store")
    before = store.path(KEY).read_bytes()
    bad = _bad_file(tmp_path, "negative")
    result = runner.invoke(
        app, ["-c", str(config), "data", "import", str(bad), "-s", "BTC/USDT", "-t", "1h"]
    )
    assert result.exit_code == 1
    assert "non_positive in 1 row(s), e.g. row 4" in result.output
    assert store.path(KEY).read_bytes() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["--timeframe", "7x"], "unknown timeframe '7x'"),
        (["--column", "price=Close"], "expected FIELD=COLUMN"),
        (["--timestamp-unit", "days"], "unknown timestamp unit 'days'"),
    ],
)
def test_cli_import_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    good = write_csv(tmp_path / "good.csv", candles(5))
    base = ["data", "import", str(good), "-s", "X/Y", "-t", "1h"]
    if "--timeframe" in args:
        base = base[:-2]
    result = CliRunner().invoke(app, [*base, *args], env={"AITRADER__DATA__DIR": str(tmp_path)})
    assert result.exit_code != 0
    assert message in result.output
