"""The Parquet store: round trip, merge on append, metadata, DuckDB, survival of a killed writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from factories import candles

from aitrader.data.provenance import OnConflict, Write
from aitrader.data.store import DatasetKey, Store, checksum
from aitrader.errors import DataError

KEY = DatasetKey("binance", "BTC/USDT", "1h")


def test_round_trip_keeps_schema_and_values(tmp_path: Path) -> None:
    store = Store(tmp_path)
    df = candles(100)
    meta = store.write(KEY, df, "test").meta
    back = store.read(KEY)
    pd.testing.assert_frame_equal(back, df)
    assert meta.rows == 100 and meta.checksum == checksum(df)
    assert meta.first == "2024-01-01T00:00:00+00:00" and meta.last == df.index[-1].isoformat()
    assert store.metadata(KEY) == meta


def test_append_merges_and_deduplicates(tmp_path: Path) -> None:
    store = Store(tmp_path)
    df = candles(100)
    store.write(KEY, df.iloc[:60], "test")
    done = store.write(KEY, df.iloc[40:], "test")
    assert done.added == 40 and done.meta.rows == 100 and done.conflicts == 0
    pd.testing.assert_frame_equal(store.read(KEY), df)


def test_symbols_with_colons_and_slashes_are_distinct(tmp_path: Path) -> None:
    store = Store(tmp_path)
    perp = DatasetKey.parse("binance:BTC/USDT:USDT:1h")
    assert perp.symbol == "BTC/USDT:USDT" and perp.timeframe == "1h"
    store.write(KEY, candles(10), "a")
    store.write(perp, candles(20), "b")
    assert {(m.symbol, m.rows) for m in store.list()} == {("BTC/USDT", 10), ("BTC/USDT:USDT", 20)}


def test_query_sees_every_series(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write(KEY, candles(10), "a")
    store.write(DatasetKey("kraken", "ETH/USD", "1d"), candles(5, freq="1D"), "b")
    result = store.query(
        "SELECT symbol, count(*) AS n FROM candles GROUP BY symbol ORDER BY symbol"
    )
    assert result.to_dict(orient="records") == [
        {"symbol": "BTC/USDT", "n": 10},
        {"symbol": "ETH/USD", "n": 5},
    ]
    with pytest.raises(DataError, match="query failed"):
        store.query("SELECT nope FROM candles")


def test_invalid_rows_leave_store_unchanged(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write(KEY, candles(10), "a")
    before = store.path(KEY).read_bytes()
    bad = candles(5, start="2024-02-01")
    bad.iloc[2, bad.columns.get_loc("high")] = bad["low"].iloc[2] * 0.5
    with pytest.raises(DataError, match="row 3, field 'high'"):
        store.write(KEY, bad, "a")
    assert store.path(KEY).read_bytes() == before


def test_missing_dataset_lists_known_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write(KEY, candles(3), "a")
    with pytest.raises(DataError, match=r"no stored data set kraken:BTC/USD:1h \(stored: binance"):
        store.read(DatasetKey("kraken", "BTC/USD", "1h"))


WRITER = """
import sys
import numpy as np
import pandas as pd
sys.path.insert(0, {tests!r})
from factories import candles
from aitrader.data.provenance import OnConflict, Write
from aitrader.data.store import DatasetKey, Store
store = Store({root!r})
how = Write("seed", "writer", OnConflict.REPLACE)
key = DatasetKey("binance", "BTC/USDT", "1m")
big = candles(400_000, freq="1min", seed=1)
print("ready", flush=True)
i = 0
while True:
    store.write(key, big.iloc[: 200_000 + (i % 7) * 20_000], how)
    i += 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.15, 0.4, 0.9])
def test_store_survives_writer_killed_mid_write(tmp_path: Path, delay: float) -> None:
    store = Store(tmp_path)
    key = DatasetKey("binance", "BTC/USDT", "1m")
    original = candles(1000, freq="1min", seed=2)
    store.write(key, original, "seed")
    code = WRITER.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    meta = store.metadata(key)
    df = store.read(key)
    assert checksum(df) == meta.checksum and len(df) == meta.rows
    assert meta.history[-1]["action"] in {"write", "writer"}
    if meta.history[-1]["action"] == "write":
        pd.testing.assert_frame_equal(df, original)
    # the next writer cleans up temp files left by the killed one and works normally
    store.write(key, original, Write("seed", "after", OnConflict.REPLACE))
    assert not list(store.path(key).parent.glob("*.tmp"))
    pd.testing.assert_frame_equal(store.read(key).loc[original.index], original)


def test_version_1_files_read_with_their_old_calendar_and_no_history(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    store = Store(tmp_path)
    key = DatasetKey("yahoo", "SPY", "1d")
    days = candles(12, freq="1D")
    store.write(key, days.iloc[:10], "yahoo")
    path = store.path(key)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"aitrader"])
    old = {k: v for k, v in meta.items() if k not in ("calendar", "history")}
    old["format_version"] = 1
    pq.write_table(table.replace_schema_metadata({b"aitrader": json.dumps(old).encode()}), path)
    back = store.metadata(key)
    assert back.calendar == "equity" and back.history == [] and back.format_version == 1
    done = store.write(key, days, "yahoo")
    assert done.added == 2 and done.meta.calendar == "equity" and len(done.meta.history) == 1
