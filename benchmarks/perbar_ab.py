"""The per-bar runners of two source trees, interleaved: before/after timings of a change.

Each repeat starts, for every runner of ``benchmarks/perbar.py``, one fresh process per tree
(alternating which tree goes first). A process imports that tree's ``src`` and ``perbar.py``,
runs the runner once on ``--rows`` one-minute bars to warm up (a first run also pays the process's
first page faults), then once more, timed: CPU seconds, final equity and fills. One runner per
process: a runner's time does not depend on what ran before it in the process. backtesting.py is
one of the runners, so each tree's ratio to it is measured in the same repeat, under the same
load. CPU-time medians, min and max, and the load average before and after, go to
``results/perbar_ab.json``.

Usage: python benchmarks/perbar_ab.py --base /work/main [--tree .] [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "perbar_ab.json"
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import perbar
from common import minute_bars
df = minute_bars(int(sys.argv[2]))
fn = perbar.RUNNERS[sys.argv[3]]
fn(df)
start = time.process_time()
result = fn(df)
print(json.dumps({"cpu_s": time.process_time() - start, **result}))
"""


def run_tree(tree: Path, rows: int, runner: str) -> dict[str, float]:
    """One child process on ``tree``: ``runner`` warmed up, then timed (CPU s) with its results."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    args = [sys.executable, "-c", CHILD, str(tree / "benchmarks"), str(rows), runner]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def runner_names(tree: Path) -> list[str]:
    """The runners of ``tree``'s perbar.py."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import perbar\n"
    code += "print(*perbar.RUNNERS, sep='\\n')"
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    args = [sys.executable, "-c", code, str(tree / "benchmarks")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()


def summary(runs: list[dict[str, dict[str, float]]], rows: int) -> dict[str, dict[str, Any]]:
    """Per runner: CPU median, min, max, bars/s, the ratio to backtesting.py (median of the
    per-process ratios) and the results of the last run."""
    out = {}
    for name in runs[0]:
        cpu = [r[name]["cpu_s"] for r in runs]
        ratios = [r["backtesting.py"]["cpu_s"] / r[name]["cpu_s"] for r in runs]
        last = runs[-1][name]
        out[name] = {
            "cpu_median_s": statistics.median(cpu), "cpu_min_s": min(cpu),
            "cpu_max_s": max(cpu), "bars_per_s_cpu": rows / statistics.median(cpu),
            "vs_backtesting_py": statistics.median(ratios),
            "vs_backtesting_py_min": min(ratios), "vs_backtesting_py_max": max(ratios),
            "final_equity": last["final_equity"], "fills": last["fills"],
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="the tree before the change")
    parser.add_argument("--tree", type=Path, default=Path(__file__).parent.parent)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = {"before": args.base.resolve(), "after": args.tree.resolve()}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {k: [] for k in trees}
    names = runner_names(trees["after"])
    load_before = os.getloadavg()
    for r in range(args.repeat):
        for label in trees:
            runs[label].append({})
        for name in names:
            for label in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                runs[label][-1][name] = run_tree(trees[label], args.rows, name)
        print(f"repeat {r + 1} load {os.getloadavg()[0]:.2f}", flush=True)
    report = {
        "rows": args.rows, "repeat": args.repeat, "trees": {k: str(v) for k, v in trees.items()},
        "load_before": load_before, "load_after": os.getloadavg(),
        "summary": {k: summary(v, args.rows) for k, v in runs.items()}, "runs": runs,
    }  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    for label, table in report["summary"].items():
        for name, s in table.items():
            print(
                f"{label:6s} {name:36s} {s['cpu_median_s']:.3f} s ({s['cpu_min_s']:.3f}–"
                f"{s['cpu_max_s']:.3f}) {s['bars_per_s_cpu'] / 1e3:7.1f} k bars/s "
                f"{s['vs_backtesting_py']:.2f}× bt.py  equity {s['final_equity']:.2f} "
                f"fills {s['fills']}"
            )
    print("load", load_before, "→", report["load_after"])


if __name__ == "__main__":
    main()
