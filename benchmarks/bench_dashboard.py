"""Dashboard pages: time to interactive in a real headless Chromium with a large ledger.

A ledger of ``--trades`` round trips (written through the ledger's writer API from a backtest's
fills; or ``--ledger FILE``) is served by ``aitrader serve``; ``aitrader dashboard`` reads it
through the API, with a small trained bundle for the model page. Selenium drives Debian's
chromium: for each page, the time from navigation until the page has settled — its title and
its data are shown, Streamlit's script has finished (no "running" widget, no spinner) and its
plotly charts are drawn. The first round is cold (the dashboard process's caches empty); the
figures are the median and range of the later rounds. Each round loads every page by its URL
(a full page load), then switches to every page in the sidebar (how a user moves between
them). Writes ``benchmarks/results/dashboard.json``.

    python benchmarks/bench_dashboard.py [--trades 10000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))

from dashboard_helpers import (  # noqa: E402
    PAGES,
    chromium,
    open_page,
    small_bundle,
    stack,
    trade_ledger,
    via_sidebar,
)


def rounds(url: str, count: int) -> dict[str, dict[str, list[float]]]:
    """Seconds to interactive per page, ``count`` rounds over every page: loading its URL
    (``load``) and switching to it in the sidebar (``switch``)."""
    times: dict[str, dict[str, list[float]]] = {"load": {}, "switch": {}}
    with chromium() as driver:
        for _ in range(count):
            for how in ("load", "switch"):
                for name in PAGES:
                    start = time.perf_counter()
                    if how == "load" or name == "overview":
                        open_page(driver, url, name, timeout=300)
                    else:
                        via_sidebar(driver, name, timeout=300)
                    times[how].setdefault(name, []).append(time.perf_counter() - start)
    return times


def summary(times: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for how, pages in times.items():
        for name, values in pages.items():
            rows.append(_row(how, name, values))
    return rows


def _row(how: str, name: str, values: list[float]) -> dict[str, Any]:
    warm = np.array(values[1:])
    return {
        "how": how,
        "page": name,
        "cold_s": values[0],
        "median_s": float(np.median(warm)),
        "min_s": float(warm.min()),
        "max_s": float(warm.max()),
        "rounds": len(warm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4, help="the first one is cold")
    parser.add_argument("--ledger", type=Path, default=None, help="an existing ledger")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ledger = args.ledger or trade_ledger(root / "trades.db", args.trades)
        bundle = small_bundle(root / "bundle")
        env = {k: v for k, v in os.environ.items() if k != "AITRADER_CONFIG"}
        load_before = os.getloadavg()
        with stack(ledger, bundle, env | {"AITRADER__DATA__DIR": str(root / "store")}) as url:
            rows = summary(rounds(url, args.rounds))
        load_after = os.getloadavg()
    print(f"{'how':<7} {'page':<10} {'cold s':>7} {'median s':>9} {'min s':>6} {'max s':>6}")
    for r in rows:
        print(
            f"{r['how']:<7} {r['page']:<10} {r['cold_s']:>7.2f} {r['median_s']:>9.2f} "
            f"{r['min_s']:>6.2f} {r['max_s']:>6.2f}"
        )
    print(f"load average before {load_before}, after {load_after}")
    write_result("dashboard", args, (load_before, load_after), {"pages": rows})


if __name__ == "__main__":
    main()
