"""Engine speed: SMA(10/30) crossover with stop-loss 2 % / take-profit 4 % vs vectorbt and
backtesting.py, on 1M real-derived one-minute bars and on the bundled BTC hourly data.

Each timing is signals + simulation + equity + basic metrics (total return, max drawdown,
trades), best of ``--repeat`` warm runs. vectorbt gets a naive index (it slows on tz-aware
ones). backtesting.py runs a ``--bt-rows`` slice (it needs minutes for 1M bars); throughput is
compared in bars/s. Numba compile/cache-load time is measured in a fresh process.

Usage: python benchmarks/bench_engine.py [--rows N] [--bt-rows N] [--repeat R]
Writes benchmarks/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma, sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.sweep import SweepGrid, sweep
from common import best_of, machine, minute_bars

RESULTS = Path(__file__).parent / "results" / "engine.json"
SL, TP, FEE = 0.02, 0.04, 0.001
CONFIG = BrokerConfig(slippage_bps=0, impact=0, max_volume_share=None, fill_at="close")


def metrics(equity: np.ndarray, trades: int) -> dict[str, float]:
    peak = np.maximum.accumulate(equity)
    return {"total_return": equity[-1] / equity[0] - 1, "max_dd": float((equity / peak - 1).min()),
            "trades": trades}  # fmt: skip


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
        low=df["low"].to_numpy(), open=df["open"].to_numpy(), init_cash=10_000.0,
    )  # fmt: skip
    return metrics(pf.value().to_numpy(), int(pf.trades.count()))


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
        bt = FractionalBacktest(data, Cross, cash=10_000.0, commission=FEE, fractional_unit=1e-8)
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


def timed(name: str, fn: Any, df: pd.DataFrame, repeat: int) -> dict[str, Any]:
    fn(df.iloc[:2000])  # warm-up (compiles numba code)
    seconds, result = best_of(lambda: fn(df), repeat)
    return {"engine": name, "bars": len(df), "seconds": seconds,
            "bars_per_s": len(df) / seconds, **result}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bt-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    minutes, hourly = minute_bars(args.rows), load_sample("BTC-USD-1h")
    rows = []
    for label, df in ((f"1m x {args.rows}", minutes), ("BTC-USD-1h", hourly)):
        for name, fn in (("aitrader", ours), ("vectorbt", vectorbt)):
            rows.append({"data": label, **timed(name, fn, df, args.repeat)})
        bt_df = df.iloc[: args.bt_rows]
        rows.append({"data": label, **timed("backtesting.py", backtesting_py, bt_df, 1)})
    grid = SweepGrid(fast=(5, 8, 10, 12, 15), slow=(30, 40, 50, 60, 80),
                     stop_loss=(0.01, 0.02), take_profit=(0.03, 0.05))  # fmt: skip
    sweep_df = minutes.iloc[:100_000]
    sweep(sweep_df.iloc[:2000], grid)
    sweep_s, table = best_of(lambda: sweep(sweep_df, grid), args.repeat)
    report = {"machine": machine(), "compile_or_cache_load_s": compile_seconds(), "runs": rows,
              "sweep": {"combinations": len(table), "bars": len(sweep_df), "seconds": sweep_s},
              "total_s": time.perf_counter() - started}  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=float))
    print(pd.DataFrame(rows).to_string(index=False))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2, default=float))


if __name__ == "__main__":
    main()
