"""Torture figures for the live runtime: seeded scenarios of real live runs against the local
exchange emulator, each SIGKILLed 5 times (start-up, mid-bar, an order in flight; fast and slow
restarts), then audited against the emulator's record (the harness of
tests/emulator/test_torture.py, with more seeds).

Usage: python benchmarks/bench_torture.py [--seeds N] [--first S]
Writes benchmarks/results/torture.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from aitrader.emulator.torture import KINDS, Spec, kill_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=100)
    args = parser.parse_args()
    rows, walls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first, args.first + args.seeds):
            ws = seed % 5 == 0
            spec = Spec(seed=seed, feed="ws" if ws else "rest", drops=2 if ws else 0)
            start = time.perf_counter()
            outcome = kill_scenario(spec, Path(tmp))
            walls.append(time.perf_counter() - start)
            rows.append(
                {"seed": seed, "feed": spec.feed, **outcome.__dict__, "clean": outcome.clean}
            )
            print(f"seed {seed}: {outcome}", flush=True)
    totals = {
        "scenarios": len(rows),
        "kills": {k: sum(r["kills"][k] for r in rows) for k in KINDS},
        "fast_restarts": sum(r["fast"] for r in rows),
        "slow_restarts": sum(r["slow"] for r in rows),
        "survived": sum(sum(r["kills"].values()) for r in rows if r["clean"]),
        "duplicates": sum(r["duplicates"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "extra": sum(r["extra"] for r in rows),
        "position_mismatches": sum(abs(r["position_gap"]) > 1e-9 for r in rows),
        "equity_gaps": sum(r["gaps"] for r in rows),
        "orders": sum(r["orders"] for r in rows),
        "fills": sum(r["fills"] for r in rows),
        "seconds_per_scenario": {
            "median": statistics.median(walls),
            "min": min(walls),
            "max": max(walls),
        },
        "load": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(totals, indent=2))
    out = Path(__file__).with_name("results") / "torture.json"
    out.write_text(json.dumps({"totals": totals, "scenarios": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
