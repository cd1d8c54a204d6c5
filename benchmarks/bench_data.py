"""Data layer speed: load 1M one-minute bars from the store, resample to 1h, run QC.

Baseline in the same run: plain pandas ``read_csv`` + ``resample`` (and ``read_parquet`` +
``resample``, to separate the file format from the code). Prints rows/s and writes
``benchmarks/results/data.json``.

    python benchmarks/bench_data.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from aitrader.data.quality import run_qc
from aitrader.data.resample import resample
from aitrader.data.store import DatasetKey, Store
from common import best_of, machine, minute_bars

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
KEY = DatasetKey("bench", "BTC/USD", "1m")


def ours(store: Store) -> pd.DataFrame:
    bars = store.read(KEY)
    hourly = resample(bars, "1m", "1h")
    report = run_qc(bars, "1m")
    assert report.passed
    return hourly


def ours_no_qc(store: Store) -> pd.DataFrame:
    return resample(store.read(KEY), "1m", "1h")


def pandas_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, index_col="timestamp", parse_dates=["timestamp"])
    return df.resample("1h", label="left", closed="left").agg(AGG).dropna()


def pandas_parquet(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df.resample("1h", label="left", closed="left").agg(AGG).dropna()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bars = minute_bars(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        store.write(KEY, bars, source="bench")
        csv_path, pq_path = Path(tmp) / "bars.csv", Path(tmp) / "bars.parquet"
        bars.to_csv(csv_path)
        bars.to_parquet(pq_path)
        results = {
            "aitrader: store read + resample 1h + QC": best_of(lambda: ours(store), args.repeat),
            "aitrader: store read + resample 1h": best_of(lambda: ours_no_qc(store), args.repeat),
            "pandas: read_csv + resample 1h": best_of(lambda: pandas_csv(csv_path), args.repeat),
            "pandas: read_parquet + resample 1h": best_of(
                lambda: pandas_parquet(pq_path), args.repeat
            ),
        }
    ours_time = results["aitrader: store read + resample 1h + QC"][0]
    rows = []
    for name, (seconds, frame) in results.items():
        rows.append(
            {
                "name": name,
                "seconds": round(seconds, 4),
                "rows_per_s": round(args.rows / seconds),
                "speedup_of_aitrader": round(seconds / ours_time, 2),
                "hourly_bars": len(frame),
            }
        )
        print(
            f"{name:45s} {seconds:8.3f} s  {args.rows / seconds:14,.0f} rows/s  "
            f"aitrader (with QC) is {seconds / ours_time:5.1f}x faster"
        )
    out = {
        "benchmark": "data",
        "rows": args.rows,
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "pandas": pd.__version__,
        "results": rows,
    }
    target = Path(__file__).parent / "results" / "data.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
