"""Vectorised parameter sweeps: many SMA-crossover / bracket settings over one dataset at once.

Every combination runs the same compiled kernel as ``run_backtest`` (in parallel threads), so a
sweep row equals the corresponding single backtest exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from aitrader.engine.backtest import market
from aitrader.engine.baselines import crossover_targets, sma
from aitrader.engine.config import BrokerConfig
from aitrader.engine.kernel import simulate
from aitrader.errors import ConfigError

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


@njit(parallel=True, cache=True)
def _sweep(bars: np.ndarray, combos: np.ndarray, p: np.ndarray, short: bool) -> np.ndarray:
    n, m = bars.shape[0], combos.shape[0]
    close = np.ascontiguousarray(bars[:, 0, 3])
    out = np.full((m, 7), np.nan)
    capacity = np.array([n + 64, n // 2 + 16], dtype=np.int64)
    funding, sub, starts = np.zeros((1, 1)), np.zeros((0, 1, 3)), np.zeros(0, dtype=np.int64)
    for c in prange(m):
        fast, slow = sma(close, int(combos[c, 0])), sma(close, int(combos[c, 1]))
        targets = crossover_targets(fast, slow, short).reshape(n, 1)
        brackets = np.empty((1, 1, 2))
        brackets[0, 0, 0], brackets[0, 0, 1] = combos[c, 2], combos[c, 3]
        result = simulate(bars, targets, brackets, funding, sub, starts, p, capacity)
        out[c, 6] = 1.0 if result[6] else 0.0
        if not result[6]:
            out[c, :6] = _stats(result[0], result[5], result[4], p[10])
    return out


def sweep(
    candles: pd.DataFrame, grid: SweepGrid, config: BrokerConfig | None = None
) -> pd.DataFrame:
    """One row per combination: the parameters and final equity, trades and basic stats."""
    config = config or BrokerConfig()
    mkt = market(candles)
    combos = grid.combinations()
    out = _sweep(mkt.bars, combos, config.params(), grid.short)
    frame = pd.DataFrame(combos, columns=["fast", "slow", "stop_loss", "take_profit"])
    frame[["fast", "slow"]] = frame[["fast", "slow"]].astype(np.int64)
    for col, name in enumerate(STAT_COLUMNS):
        frame[name] = out[:, col]
    frame["trades"] = frame["trades"].astype(np.int64) if not out[:, 6].any() else frame["trades"]
    if out[:, 6].any():
        raise ConfigError("sweep: a combination produced more fills than bars; run it alone")
    return frame
