"""Vectorised parameter sweeps: many SMA-crossover / bracket settings over one dataset at once.

Every combination runs the same compiled kernel as ``run_backtest`` (one thread per core, over
moving averages computed once per window), so a sweep row equals the single backtest exactly.
Threads rather than ``prange``: numba's parallel transform has known wrong-result bugs with array
slices of strided arrays (numba#7676), and the kernel takes such slices.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from aitrader.engine.backtest import market
from aitrader.engine.baselines import crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.kernel import C, simulate
from aitrader.errors import ConfigError
from aitrader.features.indicators import sma

STAT_COLUMNS = ("final_equity", "total_return", "trades", "win_rate", "max_drawdown", "fees")


@dataclass(frozen=True)
class SweepGrid:
    """The cartesian grid to evaluate; NaN stop/target means no bracket leg."""

    fast: Sequence[int] = (5, 10, 20)
    slow: Sequence[int] = (30, 50, 100)
    stop_loss: Sequence[float] = (np.nan,)
    take_profit: Sequence[float] = (np.nan,)
    short: bool = False

    def combinations(self) -> np.ndarray:
        """Rows of (fast, slow, stop_loss, take_profit) with fast < slow."""
        rows = [
            (f, s, sl, tp)
            for f, s, sl, tp in itertools.product(
                self.fast, self.slow, self.stop_loss, self.take_profit
            )
            if 0 < f < s
        ]
        if not rows:
            raise ConfigError("sweep grid has no combination with 0 < fast < slow")
        return np.array(rows, dtype=np.float64)


@njit(cache=True)
def _stats(equity: np.ndarray, trades: np.ndarray, fills: np.ndarray, cash0: float) -> np.ndarray:
    peak, worst = cash0, 0.0
    for value in equity:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1.0)
    wins = np.sum(trades[:, 7] > 0.0)
    n = trades.shape[0]
    out = np.empty(6)
    out[0], out[1], out[2] = equity[-1], equity[-1] / cash0 - 1.0, n
    out[3], out[4], out[5] = wins / n if n else np.nan, worst, np.sum(fills[:, 4])
    return out


def _averages(close: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """TA-Lib's SMA of ``close`` for each window (as the single backtest's crossover uses),
    computed once and shared by every combination."""
    out = np.empty((windows.shape[0], close.shape[0]))
    for w in range(windows.shape[0]):
        out[w] = sma(close, int(windows[w]))
    return out


@njit(cache=True, nogil=True)
def _sweep_part(bars, combos, averages, p, short, part):  # type: ignore[no-untyped-def]
    """Simulate the combinations ``part[0]``, ``part[0] + part[1]``, ... (one worker's share).

    ``combos`` rows hold row numbers into ``averages`` for the fast and slow SMA.
    """
    n = bars[C].shape[0]
    out = np.full((combos.shape[0], 7), np.nan)
    capacity = np.array([n + 64, n // 2 + 16], dtype=np.int64)
    funding, sub, starts = np.zeros((1, 1)), np.zeros((0, 1, 3)), np.zeros(0, dtype=np.int64)
    brackets = np.empty((1, 1, 2))
    for c in range(part[0], combos.shape[0], part[1]):
        fast, slow = averages[int(combos[c, 0])], averages[int(combos[c, 1])]
        targets = crossover_targets(fast, slow, short).reshape(n, 1)
        brackets[0, 0, 0], brackets[0, 0, 1] = combos[c, 2], combos[c, 3]
        result = simulate(bars, targets, brackets, funding, sub, starts, p, capacity)
        out[c, 6] = 1.0 if result[6] else 0.0
        if not result[6]:
            out[c, :6] = _stats(result[0], result[5], result[4], p[10])
    return out


def _run_sweep(
    bars: tuple[np.ndarray, ...], combos: np.ndarray, p: np.ndarray, short: bool
) -> np.ndarray:
    """Every combination in compiled code, the combinations split over one thread per core
    (the compiled code releases the GIL); each row is computed exactly as a single run."""
    windows = np.unique(combos[:, :2]).astype(np.int64)
    averages = _averages(np.ascontiguousarray(bars[C][:, 0]), windows)
    rows = combos.copy()
    rows[:, :2] = np.searchsorted(windows, combos[:, :2])
    workers = max(1, min(os.cpu_count() or 1, len(combos)))
    parts = [np.array([w, workers], dtype=np.int64) for w in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda part: _sweep_part(bars, rows, averages, p, short, part), parts))
    out = done[0]
    for w, result in enumerate(done[1:], start=1):
        out[w::workers] = result[w::workers]
    return out


def sweep(
    candles: pd.DataFrame, grid: SweepGrid, config: BrokerConfig | None = None
) -> pd.DataFrame:
    """One row per combination: the parameters and final equity, trades and basic stats."""
    config = config or BrokerConfig()
    mkt = market(candles)
    combos = grid.combinations()
    out = _run_sweep(mkt.columns, combos, config.params(), grid.short)
    frame = pd.DataFrame(combos, columns=["fast", "slow", "stop_loss", "take_profit"])
    frame[["fast", "slow"]] = frame[["fast", "slow"]].astype(np.int64)
    for col, name in enumerate(STAT_COLUMNS):
        frame[name] = out[:, col]
    frame["trades"] = frame["trades"].astype(np.int64) if not out[:, 6].any() else frame["trades"]
    if out[:, 6].any():
        raise ConfigError("sweep: a combination produced more fills than bars; run it alone")
    return frame
