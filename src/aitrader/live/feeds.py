"""Closed-bar feeds for the runtime: the :class:`BarFeed` protocol and stored bars replayed.
A venue's live feeds (ccxt REST polling, websocket klines) are in :mod:`aitrader.venues.ccxt.feeds`.

A feed yields one symbol's *closed* bars in strictly increasing time. The runner never sees a bar
in progress, so the decision path gets exactly what a backtest gets: the bar once it is final.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np
import pandas as pd

from aitrader.data.schema import COLUMNS
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError


class BarFeed(Protocol):
    """One symbol's closed bars, oldest first."""

    symbol: str

    def bars(self) -> AsyncIterator[Bar]: ...


class ReplayFeed:
    """Stored candles as closed bars; ``speed`` bars-durations per second of wall time
    (0: as fast as possible, still yielding to the event loop after each bar)."""

    def __init__(self, symbol: str, candles: pd.DataFrame, speed: float = 0.0) -> None:
        if speed < 0:
            raise ConfigError(f"replay speed must be ≥ 0, got {speed}")
        self.symbol, self.candles, self.speed = symbol, candles, speed

    def _pause(self) -> float:
        """Seconds between bars at ``speed`` (one bar duration divided by the speed)."""
        index = self.candles.index
        if self.speed == 0 or len(index) < 2:
            return 0.0
        step = pd.Timedelta(index[1] - index[0]).total_seconds()
        return step / self.speed

    async def bars(self) -> AsyncIterator[Bar]:
        values = self.candles.loc[:, list(COLUMNS)].to_numpy(np.float64)
        pause = self._pause()
        for stamp, row in zip(self.candles.index, values, strict=True):
            yield Bar(self.symbol, stamp, *map(float, row))
            await asyncio.sleep(pause)
