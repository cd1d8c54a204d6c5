"""The sequence kinds' walk-forward through the CLI: `aitrader evaluate DATA --model-kind KIND`.

Each kind runs as its own `aitrader evaluate ... --no-track --json` process (default config: 81
features, 3-class next-bar labels, 49 expanding walk-forward folds, folds on a 2-process pool,
the out-of-sample targets traded through the managed engine). Records the wall time, the CPU time
of the process and its workers (user + sys), the load average before and after, and the metrics.

Usage: python benchmarks/bench_sequence.py [--kinds lstm tcn ...] [--data sample:BTC-USD-1h]
Appends to benchmarks/results/sequence.json (one record per run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "sequence.json"
KEEP = (
    "accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "auc", "net_sharpe",
    "net_return", "trades", "time_in_market", "dsr", "pbo",
)  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(kind: str, data: str) -> dict[str, Any]:
    """One `aitrader evaluate` of ``kind`` on ``data``: timings, load and metrics."""
    cli = str(Path(sys.executable).parent / "aitrader")
    command = [cli, "evaluate", data, "--model-kind", kind]
    command += ["--no-track", "--json"]
    load_before, cpu_before, start = os.getloadavg(), _cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _cpu() - cpu_before
    record: dict[str, Any] = {"kind": kind, "data": data, "rc": done.returncode}
    record |= {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    record |= {"load_before": load_before, "load_after": os.getloadavg()}
    if done.returncode != 0:
        return record | {"error": done.stderr[-2000:]}
    summary = json.loads(done.stdout)
    return record | {k: summary.get(k) for k in KEEP} | {"folds": len(summary["folds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["lstm", "tcn", "transformer", "cnn"])
    parser.add_argument("--data", default="sample:BTC-USD-1h")
    args = parser.parse_args()
    RESULTS.parent.mkdir(exist_ok=True)
    for kind in args.kinds:
        record = run(kind, args.data)
        print(json.dumps(record), flush=True)
        records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        RESULTS.write_text(json.dumps([*records, record], indent=1) + "\n")


if __name__ == "__main__":
    main()
