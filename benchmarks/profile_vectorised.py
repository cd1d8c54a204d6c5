"""Where the vectorised path's time goes, next to vectorbt and the hand-written numba loop.

The rule and data of ``bench_engine.py`` (SMA(10/30) crossover, stop 2 %, take-profit 4 %,
0.1 % fees, 1M one-minute bars). Per repeat, CPU seconds (``time.process_time``) of:

* the three engines of ``bench_engine.py`` end to end (aitrader ``run_backtest`` reading its
  trades frame, vectorbt ``from_signals``, the numba loop), run interleaved;
* the stages of the aitrader run: signals (two TA-Lib SMAs + the crossover targets),
  ``run_backtest`` (candles to kernel inputs, the kernel, equity/cash/exposure series), the
  first read of the trades and of the fills frame (free where they are built eagerly), and the
  basic metrics every engine computes (total return, max drawdown).

Only public calls that every version of ``run_backtest`` has, so the same script measures two
trees: ``PYTHONPATH=TREE/src:benchmarks python benchmarks/profile_vectorised.py``. Prints
medians with min–max and the load; ``--write`` saves ``results/vectorised_profile.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_engine as be
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from common import interleaved, minute_bars

RESULTS = Path(__file__).parent / "results" / "vectorised_profile.json"


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def stages(df: Any) -> dict[str, float]:
    """CPU seconds of each stage of one aitrader run."""
    opts = RunOptions(stop_loss=be.SL, take_profit=be.TP, benchmarks=False, timeframe="1m")
    close = df["close"].to_numpy()
    times: dict[str, float] = {}
    times["signals"], targets = _cpu(lambda: sma_crossover_targets(close, 10, 30))
    times["run_backtest"], result = _cpu(lambda: run_backtest(df, targets, be.CONFIG, opts))
    times["trades frame (first read)"], trades = _cpu(lambda: result.trades)
    times["fills frame (first read)"], _ = _cpu(lambda: result.fills)
    times["metrics"], _ = _cpu(lambda: be.metrics(result.equity.to_numpy(), len(trades)))
    return times


def summarise(samples: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def report(runs: dict[str, dict[str, Any]], parts: dict[str, list[float]]) -> dict[str, Any]:
    """Engines' CPU medians (min, max), stage medians, the two target ratios."""
    keys = ("cpu_median_s", "cpu_min_s", "cpu_max_s")
    cpu = {n: {k: s[k] for k in keys} for n, s in runs.items()}
    median = {n: s["cpu_median_s"] for n, s in runs.items()}
    return {
        "engines": cpu,
        "stages": {name: summarise(samples) for name, samples in parts.items()},
        "ratios": {"aitrader_over_numba_loop": median["aitrader"] / median["numba loop"],
                   "vectorbt_over_aitrader": median["vectorbt"] / median["aitrader"]},
        "same_result": runs["aitrader"]["result"] == runs["numba loop"]["result"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="save results/vectorised_profile.json")
    args = parser.parse_args()
    df = minute_bars(args.rows)
    engines = {"aitrader": be.ours, "vectorbt": be.vectorbt, "numba loop": be.numba_loop}
    for fn in engines.values():
        fn(df.iloc[:2000])  # compile / import
    stages(df.iloc[:2000])
    load_before = os.getloadavg()
    runs = interleaved({name: (lambda f=fn: f(df)) for name, fn in engines.items()}, args.repeat)
    parts: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, seconds in stages(df).items():
            parts.setdefault(name, []).append(seconds)
    out = {"rows": args.rows, "repeat": args.repeat, "load_before": load_before,
           "load_after": os.getloadavg(), **report(runs, parts)}  # fmt: skip
    print(json.dumps(out, indent=2, default=float))
    if args.write:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
