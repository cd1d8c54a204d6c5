"""The event-driven engine: a data source, a clock and a broker around one bar policy.

Backtest replay, paper and live trading differ only in what is passed in; the decision code is
the same object in all of them (``ManagedPolicy`` driving a user's
:class:`aitrader.strategy.Strategy` through its target feed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Protocol

import numpy as np
import pandas as pd

from aitrader.data.schema import COLUMNS
from aitrader.engine.policy import BarPolicy
from aitrader.engine.types import Account, Bar, Fill, Order

BarEvent = Mapping[str, Bar]
Clock = Callable[[], float]


def replay(candles: Mapping[str, pd.DataFrame]) -> Iterator[BarEvent]:
    """A data source that replays stored candles (shared index) one bar at a time; each bar's
    ``pd.Timestamp`` is built only if its ``time`` is read (:meth:`Bar.from_ns`)."""
    symbols = list(candles)
    index = pd.DatetimeIndex(candles[symbols[0]].index)
    stamps, tz = index.as_unit("ns").asi8.tolist(), index.tz
    columns = [[candles[s][c].to_numpy(np.float64).tolist() for c in COLUMNS] for s in symbols]
    make: Callable[..., Bar] = Bar.from_ns
    if tz is None or str(tz) != "UTC":
        make = partial(Bar.from_ns, tz=tz)
    if len(symbols) == 1:
        symbol = symbols[0]
        for bar in map(make, repeat(symbol), stamps, *columns[0]):
            yield {symbol: bar}
        return
    for stamp, *rows in zip(stamps, *(zip(*c, strict=True) for c in columns), strict=True):
        yield {s: make(s, stamp, *row) for s, row in zip(symbols, rows, strict=True)}


@dataclass
class EngineResult:
    """What the event loop recorded: fills, and cash and equity at each bar's close; ``stamps``
    are the bars' open times in ns (UTC), ``times`` the same as timestamps."""

    fills: list[Fill] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    cash: list[float] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def times(self) -> pd.DatetimeIndex:
        """The bars' open times (UTC)."""
        return pd.DatetimeIndex(np.array(self.stamps, dtype="datetime64[ns]"), tz="UTC")


class Broker(Protocol):
    """What the engine drives: the simulated broker, its ledger-writing subclass, or a live
    exchange broker with the same bar-driven interface."""

    @property
    def symbols(self) -> Sequence[str]: ...

    @property
    def cash(self) -> float: ...

    @property
    def fills(self) -> Sequence[Fill]: ...

    def submit(self, order: Order) -> bool: ...

    def open_bar(
        self,
        i: int,
        bars: BarEvent,
        funding: Mapping[str, float] | None = None,
        sub_bars: Mapping[str, np.ndarray] | None = None,
    ) -> None: ...

    def close_bar(self, bars: BarEvent) -> None: ...

    def account(self, bars: BarEvent) -> Account: ...


class Engine:
    """Feeds bars to the broker and the strategy in the kernel's order of events."""

    def __init__(self, strategy: BarPolicy, broker: Broker, clock: Clock = time.monotonic):
        self.strategy, self.broker, self.clock = strategy, broker, clock
        self.result = EngineResult()
        self._i = 0
        self._first = broker.symbols[0]  # whose bar time stamps the results

    @property
    def bars_done(self) -> int:
        """Bars processed so far (the index the next bar gets)."""
        return self._i

    def restore(
        self,
        bars_done: int,
        equity: Iterable[float],
        cash: Iterable[float],
        times: Iterable[pd.Timestamp | int],
    ) -> None:
        """Continue after ``bars_done`` bars whose closing equity, cash and open times
        (timestamps or ns) are given (a run resumed from a checkpoint); the broker and strategy
        are restored separately."""
        result = EngineResult(
            fills=self.result.fills,
            equity=[float(v) for v in equity],
            cash=[float(v) for v in cash],
            stamps=[t if isinstance(t, int) else int(pd.Timestamp(t).value) for t in times],
            wall_seconds=self.result.wall_seconds,
        )
        if not len(result.equity) == len(result.cash) == len(result.stamps) == bars_done:
            raise ValueError(
                f"restore: {bars_done} bars but {len(result.equity)} equity, "
                f"{len(result.cash)} cash and {len(result.stamps)} time values"
            )
        self.result, self._i = result, bars_done

    def on_bar(
        self,
        bars: BarEvent,
        funding: Mapping[str, float] | None = None,
        sub_bars: Mapping[str, np.ndarray] | None = None,
        *,
        decide: bool = True,
    ) -> None:
        """One bar: open-to-close broker events, the decision at the close, close fills, marks.

        ``decide=False`` only monitors: the broker's own events (resting orders, brackets,
        liquidation) and the marks run, the strategy is not asked and nothing is submitted.
        """
        i, broker, result = self._i, self.broker, self.result
        broker.open_bar(i, bars, funding, sub_bars)
        if decide:
            orders = self.strategy.on_bar(i, bars)
            if orders:
                for order in orders:
                    broker.submit(order)
        broker.close_bar(bars)
        account = broker.account(bars)
        result.equity.append(account.equity)
        result.cash.append(account.cash)
        result.stamps.append(bars[self._first].ns)
        self._i = i + 1

    def run(self, source: Iterable[BarEvent]) -> EngineResult:
        """Drive the engine until the data source ends."""
        start = self.clock()
        for bars in source:
            self.on_bar(bars)
        self.result.fills = list(self.broker.fills)
        self.result.wall_seconds = self.clock() - start
        return self.result
