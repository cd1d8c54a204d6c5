"""Monitoring API latency under a bounded local load.

A paper run (``aitrader paper`` on the bundled BTC-USD 1h sample, ``--bars`` bars) makes the
ledger; ``aitrader serve`` serves it in its own process on 127.0.0.1; an asyncio httpx client
sends requests on a fixed schedule (open loop: request ``i`` goes out at ``i / rate`` seconds,
whatever the answers before it did) for ``--seconds`` seconds, first to ``/status`` (with the
token), then to ``/metrics``, each after ``--warmup`` seconds of the same load that are not
counted. Latency is from send to full response. Prints a table and writes
``benchmarks/results/api.json``. With ``--trades N`` the ledger holds N round trips instead
(written through the ledger's writer API from a backtest's fills, see
``tests/data/dashboard_helpers.py``); ``--ledger FILE`` serves an existing ledger.

    python benchmarks/bench_api.py [--rate 200] [--seconds 30] [--bars 2000 | --trades 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from aitrader.ops.auth import hash_token, new_token
from common import write_result

ENTRY = "from aitrader.cli import main; main()"


def make_ledger(root: Path, bars: int) -> Path:
    path = root / "paper.db"
    env = {**os.environ, "AITRADER__DATA__DIR": str(root / "store")}
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", str(bars), "--ledger", str(path)]
    subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, check=True, capture_output=True)
    return path


def build_ledger(root: Path, bars: int, trades: int) -> Path:
    """A paper run of ``bars`` bars, or with ``trades`` a ledger of that many round trips."""
    if not trades:
        return make_ledger(root, bars)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from dashboard_helpers import trade_ledger

    return trade_ledger(root / "trades.db", trades)


def start_server(ledger: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "AITRADER__API__TOKEN_HASH": hash_token(token)}
    command = [sys.executable, "-c", ENTRY, "serve", "--ledger", str(ledger), "--port", "0"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    found = re.search(r"on (http://\S+)", process.stderr.readline())
    if found is None:
        process.terminate()
        raise RuntimeError("aitrader serve did not start")
    return process, found.group(1)


async def load(url: str, path: str, token: str, rate: float, seconds: float) -> dict[str, Any]:
    """``rate`` requests per second to ``path`` for ``seconds``: latency percentiles (ms).

    The client is aiohttp (lighter than httpx's async client, so the load generator takes less
    of the CPU the server needs on a small machine)."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=200)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        url, headers=headers, connector=connector, timeout=timeout
    ) as http:
        async with http.get(path) as warm:  # the token's slow check, a first connection
            await warm.read()

        async def one(at: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            sent = time.perf_counter()
            try:
                async with http.get(path) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            latencies.append((time.perf_counter() - sent) * 1000)
            errors += not ok

        start = time.perf_counter() + 0.1
        count = int(rate * seconds)
        await asyncio.gather(*(one(start + i / rate) for i in range(count)))
        took = time.perf_counter() - start
    values = np.array(latencies)
    return {
        "path": path,
        "requests": count,
        "errors": errors,
        "achieved_rate": count / took,
        **{f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)},
        "max": float(values.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load not counted")
    parser.add_argument("--trades", type=int, default=0, help="a ledger of N round trips")
    parser.add_argument("--ledger", type=Path, default=None, help="serve this ledger instead")
    args = parser.parse_args()
    token = new_token()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger or build_ledger(Path(tmp), args.bars, args.trades)
        process, url = start_server(ledger, token)
        try:
            load_before = os.getloadavg()
            runs = []
            for path in ("/status", "/metrics"):
                asyncio.run(load(url, path, token, args.rate, args.warmup))  # not counted
                runs.append(asyncio.run(load(url, path, token, args.rate, args.seconds)))
            load_after = os.getloadavg()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"{'route':<10} {'req':>6} {'rate/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for r in runs:
        print(
            f"{r['path']:<10} {r['requests']:>6} {r['achieved_rate']:>7.1f} {r['p50']:>8.2f} "
            f"{r['p90']:>8.2f} {r['p99']:>8.2f}  errors={r['errors']}"
        )
    print(f"load average before {load_before}, after {load_after}")
    write_result("api", args, (load_before, load_after), {"runs": runs})


if __name__ == "__main__":
    main()
