"""Engine speed against backtesting.py, vectorbt and a hand-written numba loop, in one run.

Vectorised path: SMA(10/30) crossover with stop-loss 2 % / take-profit 4 %, 0.1 % fees, on 1M
real-derived one-minute bars and on the bundled BTC hourly data. Each timing is signals +
simulation + equity + basic metrics (total return, max drawdown, trades):

* aitrader ``run_backtest`` (the full BacktestResult: fills and trades frames included);
* vectorbt ``Portfolio.from_signals`` (tz-naive index: it slows on tz-aware ones);
* a hand-written numba loop of the same rule (SMAs, next-open fills, brackets, equity): the
  floor a compiled single-purpose loop reaches;
* backtesting.py on a ``--bt-rows`` slice (it needs minutes for 1M bars; compared in bars/s).

Per-bar path (``perbar.py``): a user's Python ``on_bar`` SMA crossover with a fixed size on
``Engine`` + ``SimBroker``, the risk-managed path, and backtesting.py, on ``--bar-rows`` bars.

Every group runs interleaved ``--repeat`` times; medians, min and max of wall and CPU time and
the load average are recorded. Ratios use CPU-time medians (steadier on a busy machine).

Usage: python benchmarks/bench_engine.py [--rows N] [--bt-rows N] [--bar-rows N] [--repeat R]
Writes benchmarks/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

import perbar
from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.sweep import SweepGrid, sweep
from aitrader.features.indicators import sma
from common import best_of, interleaved, machine, minute_bars

RESULTS = Path(__file__).parent / "results" / "engine.json"
SL, TP, FEE, CASH = 0.02, 0.04, 0.001, 10_000.0
CONFIG = BrokerConfig(slippage_bps=0, impact=0, max_volume_share=None, fill_at="close")


def metrics(equity: np.ndarray, trades: int) -> dict[str, float]:
    peak = np.maximum.accumulate(equity)
    return {"total_return": float(equity[-1] / equity[0] - 1),
            "max_dd": float((equity / peak - 1).min()), "trades": trades}  # fmt: skip


def ours(df: pd.DataFrame) -> dict[str, float]:
    targets = sma_crossover_targets(df["close"].to_numpy(), 10, 30)
    opts = RunOptions(stop_loss=SL, take_profit=TP, benchmarks=False, timeframe="1m")
    result = run_backtest(df, targets, CONFIG, opts)
    return metrics(result.equity.to_numpy(), len(result.trades))


def vectorbt(df: pd.DataFrame) -> dict[str, float]:
    import vectorbt as vbt

    close = pd.Series(df["close"].to_numpy(), index=df.index.tz_localize(None))
    fast, slow = vbt.MA.run(close, 10).ma, vbt.MA.run(close, 30).ma
    entries, exits = fast.vbt.crossed_above(slow), fast.vbt.crossed_below(slow)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, fees=FEE, sl_stop=SL, tp_stop=TP, high=df["high"].to_numpy(),
        low=df["low"].to_numpy(), open=df["open"].to_numpy(), init_cash=CASH,
    )  # fmt: skip
    return metrics(pf.value().to_numpy(), int(pf.trades.count()))


@njit(cache=True)
def _loop(prices: tuple, fast: int, slow: int, fee: float) -> tuple[np.ndarray, int]:  # type: ignore[type-arg]
    """SMA cross → target long/flat at the close (fill at that close, as CONFIG), 2 %/4 %
    brackets checked from the next bar on (gap → open), all-in long, equity at each close."""
    o, h, lo, c = prices
    n = c.shape[0]
    equity = np.empty(n)
    cash, qty, stop, take, fsum, ssum = CASH, 0.0, 0.0, 0.0, 0.0, 0.0
    last, trades = -1.0, 0
    for i in range(n):
        if qty > 0.0:
            exit_at = -1.0
            if o[i] <= stop or o[i] >= take:
                exit_at = o[i]
            elif lo[i] <= stop:
                exit_at = stop
            elif h[i] >= take:
                exit_at = take
            if exit_at > 0.0:
                cash += qty * exit_at * (1.0 - fee)
                qty = 0.0
        fsum += c[i]
        ssum += c[i]
        if i >= fast:
            fsum -= c[i - fast]
        if i >= slow:
            ssum -= c[i - slow]
        if i >= slow - 1:
            target = 1.0 if fsum / fast > ssum / slow else 0.0
            if target != last:
                last = target
                if target > 0.0 and qty == 0.0:
                    qty = cash / (c[i] * (1.0 + fee))
                    cash -= qty * c[i] * (1.0 + fee)
                    stop, take, trades = c[i] * (1.0 - SL), c[i] * (1.0 + TP), trades + 1
                elif target == 0.0 and qty > 0.0:
                    cash += qty * c[i] * (1.0 - fee)
                    qty = 0.0
        equity[i] = cash + qty * c[i]
    return equity, trades


def numba_loop(df: pd.DataFrame) -> dict[str, float]:
    prices = tuple(df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    equity, trades = _loop(prices, 10, 30, FEE)
    return metrics(equity, int(trades))


def backtesting_py(df: pd.DataFrame) -> dict[str, float]:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            close = np.asarray(self.data.Close, dtype=np.float64)
            self.fast, self.slow = self.I(sma, close, 10), self.I(sma, close, 30)

        def next(self) -> None:
            price = self.data.Close[-1]
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(sl=price * (1 - SL), tp=price * (1 + TP))
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    data = df.rename(columns=str.capitalize).tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(data, Cross, cash=CASH, commission=FEE, fractional_unit=1e-8)
        stats = bt.run()
    return metrics(stats["_equity_curve"]["Equity"].to_numpy(), int(stats["# Trades"]))


def compile_seconds() -> float:
    """Time to import and run a tiny backtest in a fresh process (numba cache load)."""
    code = ("import time; t=time.perf_counter(); import numpy as np; from aitrader.engine."
            "backtest import run_backtest, RunOptions; from aitrader.data.samples import "
            "load_sample; d=load_sample('BTC-USD-1h').iloc[:100]; t0=time.perf_counter(); "
            "run_backtest(d, np.ones(100), options=RunOptions(stop_loss=0.1, take_profit=0.1));"
            "print(time.perf_counter()-t0)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def group(label: str, engines: dict[str, tuple[Any, pd.DataFrame]], repeat: int) -> list[dict]:
    """Warm up, then time the engines interleaved; one row per engine with bars/s."""
    for fn, df in engines.values():
        fn(df.iloc[:2000])  # compiles numba code, imports the libraries
    stats = interleaved({n: (lambda f=fn, d=df: f(d)) for n, (fn, d) in engines.items()}, repeat)
    rows = []
    for name, s in stats.items():
        bars = len(engines[name][1])
        rows.append({"data": label, "engine": name, "bars": bars,
                     "bars_per_s_cpu": bars / s["cpu_median_s"],
                     "bars_per_s_wall": bars / s["wall_median_s"], **s})  # fmt: skip
    return rows


def ratio(rows: list[dict], data: str, a: str, b: str) -> float:
    """How many times ``a``'s CPU-time bars/s is ``b``'s (same data group)."""
    speed = {r["engine"]: r["bars_per_s_cpu"] for r in rows if r["data"] == data}
    return speed[a] / speed[b]


def vectorised(args: argparse.Namespace, minutes: pd.DataFrame) -> list[dict]:
    rows = []
    hourly = load_sample("BTC-USD-1h")
    for label, df in ((f"1m x {len(minutes)}", minutes), ("BTC-USD-1h", hourly)):
        engines = {"aitrader": (ours, df), "vectorbt": (vectorbt, df),
                   "numba loop": (numba_loop, df)}  # fmt: skip
        rows += group(label, engines, args.repeat)
        rows += group(label, {"backtesting.py": (backtesting_py, df.iloc[: args.bt_rows])}, 1)
    return rows


def per_bar(args: argparse.Namespace, minutes: pd.DataFrame) -> list[dict]:
    df = minutes.iloc[: args.bar_rows]
    engines = {name: (fn, df) for name, fn in perbar.RUNNERS.items()}
    return group(f"per-bar 1m x {len(df)}", engines, args.repeat)


def summary(rows: list[dict], vec: str, bar: str) -> dict[str, float]:
    return {
        "vectorised_vs_vectorbt": ratio(rows, vec, "aitrader", "vectorbt"),
        "numba_loop_vs_vectorised": ratio(rows, vec, "numba loop", "aitrader"),
        "vectorised_vs_backtesting_py": ratio(rows, vec, "aitrader", "backtesting.py"),
        "per_bar_vs_backtesting_py": ratio(rows, bar, "engine (user on_bar)", "backtesting.py"),
        "managed_vs_backtesting_py": ratio(rows, bar, "managed (risk path)", "backtesting.py"),
        "contract_vs_backtesting_py": ratio(
            rows, bar, "strategy contract (user Strategy)", "backtesting.py"
        ),
        "floor_vs_backtesting_py": ratio(rows, bar, "floor (bars + on_bar only)", "backtesting.py"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bt-rows", type=int, default=100_000)
    parser.add_argument("--bar-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    minutes = minute_bars(args.rows)
    rows = vectorised(args, minutes) + per_bar(args, minutes)
    grid = SweepGrid(fast=(5, 8, 10, 12, 15), slow=(30, 40, 50, 60, 80),
                     stop_loss=(0.01, 0.02), take_profit=(0.03, 0.05))  # fmt: skip
    sweep_df = minutes.iloc[:100_000]
    sweep(sweep_df.iloc[:2000], grid)
    sweep_s, table = best_of(lambda: sweep(sweep_df, grid), args.repeat)
    report = {
        "machine": machine(), "load_before": load_before, "load_after": os.getloadavg(),
        "ratios": summary(rows, f"1m x {args.rows}", f"per-bar 1m x {args.bar_rows}"),
        "compile_or_cache_load_s": compile_seconds(), "runs": rows,
        "sweep": {"combinations": len(table), "bars": len(sweep_df), "seconds": sweep_s},
        "total_s": time.perf_counter() - started,
    }  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=float))
    columns = ["data", "engine", "bars", "bars_per_s_cpu", "bars_per_s_wall", "cpu_median_s",
               "cpu_min_s", "cpu_max_s", "wall_median_s", "load_after"]  # fmt: skip
    print(pd.DataFrame(rows)[columns].to_string(index=False))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2, default=float))


if __name__ == "__main__":
    main()
