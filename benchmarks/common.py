"""Shared helpers for the benchmarks: a large real-data series and a best-of timer."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from aitrader.data.samples import load_sample


def minute_bars(rows: int = 1_000_000) -> pd.DataFrame:
    """``rows`` one-minute bars made by chaining copies of the real BTC-PERP 1m sample.

    Each copy is rescaled so it starts where the previous one ended, giving a continuous series
    with a gap-free 1-minute index and real intrabar structure.
    """
    base = load_sample("BTC-PERP-1m")
    prices = base[["open", "high", "low", "close"]].to_numpy()
    volume = base["volume"].to_numpy()
    chunks, vols, level = [], [], 1.0
    while sum(len(c) for c in chunks) < rows:
        chunks.append(prices * level)
        vols.append(volume)
        level *= prices[-1, 3] / prices[0, 0]
    ohlc = np.concatenate(chunks)[:rows]
    index = pd.date_range("2015-01-01", periods=rows, freq="1min", tz="UTC", name="timestamp")
    frame = pd.DataFrame(ohlc, index=index.as_unit("ns"), columns=["open", "high", "low", "close"])
    frame["volume"] = np.concatenate(vols)[:rows]
    frame.index.freq = None
    return frame


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Fastest wall time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def machine() -> str:
    """A one-line description of the machine for the results file."""
    import os

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )


def interleaved(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, Any]]:
    """Run every entry ``repeat`` times in alternating order (so that a busy machine's load
    falls on all of them alike): median, min and max of wall and CPU seconds, last result."""
    import os
    import statistics

    names = list(runs)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    results: dict[str, Any] = {}
    for r in range(repeat):
        for name in names if r % 2 == 0 else names[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = runs[name]()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    out = {}
    for n in names:
        out[n] = {
            "wall_median_s": statistics.median(wall[n]), "wall_min_s": min(wall[n]),
            "wall_max_s": max(wall[n]), "cpu_median_s": statistics.median(cpu[n]),
            "cpu_min_s": min(cpu[n]), "cpu_max_s": max(cpu[n]), "runs": repeat,
            "load_after": os.getloadavg()[0], "result": results[n],
        }  # fmt: skip
    return out


def write_result(name: str, args: Any, loads: tuple[Any, Any], payload: dict[str, Any]) -> None:
    """``results/NAME.json``: date, machine, the arguments, load average before and after, and
    ``payload``."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "loadavg_before": loads[0],
        "loadavg_after": loads[1],
        **payload,
    }
    target = Path(__file__).parent / "results" / f"{name}.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
