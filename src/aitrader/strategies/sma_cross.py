"""SMA crossover: long (or short) from the bar the fast average crosses the slow one."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from aitrader.engine.baselines import sma_crossover_targets
from aitrader.errors import ConfigError
from aitrader.strategy.base import (
    Context,
    Decision,
    Environment,
    Param,
    Strategy,
    Target,
    TargetFrame,
)


class SmaCross(Strategy):
    """SMA(fast)/SMA(slow) crossover baseline (NOT a model): enters on a crossing.

    Long from the close where SMA(fast) crosses above SMA(slow), flat (short with ``short``)
    where it crosses below; nothing is decided on the first bar both averages exist, only on a
    crossing. Ties: long needs fast > slow strictly. Each symbol gets 1/N of equity. The averages
    are TA-Lib's SMA: ``vectorized`` calls it, ``on_bar`` keeps its running sum from the first
    bar seen with the same operations in the same order, so both agree to the last bit.
    """

    name = "sma-cross"
    window = 1
    fast = Param(10, low=2, high=100, step=1, help="fast SMA window (bars)")
    slow = Param(30, low=3, high=400, step=1, help="slow SMA window (bars)")
    short = Param(False, help="go short below instead of flat")
    stop_loss = Param(0.03, low=0.001, high=0.99, help="protective stop, fraction of entry")

    def check(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ConfigError(f"sma-cross: fast ({self.fast}) must be below slow ({self.slow})")
        self.warmup = self.slow + 1  # a live run starts with both averages known

    def setup(self, env: Environment) -> None:
        n, slow = len(env.symbols), self.slow
        self._ring = np.zeros((n, slow))  # the last ``slow`` closes per symbol
        self._sums = np.zeros((n, 2))  # running (fast, slow) sums from the first bar
        self._count = [0] * n
        self._state = [math.nan] * n  # 1 (above), low (below), NaN (not yet)
        for j, s in enumerate(env.symbols):
            frame = env.history.get(s)
            for close in () if frame is None else frame["close"].to_numpy(np.float64):
                self._push(j, float(close))

    def _push(self, j: int, close: float) -> float:
        """TA-Lib's SMA step (drop the oldest close, then add the new one); returns the
        previous state."""
        i, fast, slow = self._count[j], self.fast, self.slow
        ring, sums = self._ring[j], self._sums[j]
        quick, lazy = float(sums[0]), float(sums[1])
        if i >= fast:
            quick -= float(ring[(i - fast) % slow])
        if i >= slow:
            lazy -= float(ring[i % slow])
        quick, lazy = quick + close, lazy + close
        ring[i % slow] = close
        sums[0], sums[1] = quick, lazy
        self._count[j] = i + 1
        a, b = quick / fast, lazy / slow
        before = self._state[j]
        ok = i >= slow - 1 and a == a and b == b
        self._state[j] = (1.0 if a > b else (-1.0 if self.short else 0.0)) if ok else math.nan
        return before

    def observe(self, ctx: Context) -> None:
        for j, s in enumerate(ctx.symbols):
            self._push(j, ctx.bars[s].close)

    def on_bar(self, ctx: Context) -> Decision:
        out: dict[str, Target] = {}
        weight = 1.0 / len(ctx.symbols)
        for j, s in enumerate(ctx.symbols):
            before = self._push(j, ctx.bars[s].close)
            now = self._state[j]
            if before == before and now == now and now != before:  # a crossing
                out[s] = Target(now * weight, stop_loss=self.stop_loss)
        return out or None

    def vectorized(self, data: Mapping[str, pd.DataFrame], start: int = 0) -> TargetFrame:
        weight = 1.0 / len(data)
        columns = {}
        for s, frame in data.items():
            state = sma_crossover_targets(
                frame["close"].to_numpy(np.float64), self.fast, self.slow, self.short
            )
            before = np.concatenate(([np.nan], state[:-1]))
            crossed = ~np.isnan(before) & ~np.isnan(state) & (state != before)
            columns[s] = np.where(crossed, state * weight, np.nan)
        index = next(iter(data.values())).index
        fraction = pd.DataFrame(columns, index=index)
        stop = pd.DataFrame(self.stop_loss, index=index, columns=list(data))
        return TargetFrame(fraction, stop_loss=stop)
