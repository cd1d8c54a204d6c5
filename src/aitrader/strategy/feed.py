"""``StrategyFeed``: a :class:`~aitrader.strategy.base.Strategy` as the target feed of the
risk-managed decision path (:class:`~aitrader.engine.managed_policy.ManagedPolicy`).

Backtest, paper and live runs all decide through it: each closed bar is appended to the
strategy's history buffers, ``on_bar`` is asked for targets, and the answer becomes the
:class:`~aitrader.engine.managed_policy.BarTargets` row the policy turns into risk-checked
orders. A bar seen twice (same or older open time, e.g. a resumed run catching up) does not
advance the state: the feed repeats its last answer. Bars seen without a decision (trading
paused) reach the strategy through ``observe``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from aitrader.engine.managed_policy import BarTargets
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.features.bars import Bars, bars_from_candles
from aitrader.strategy.base import (
    PLAN_FIELDS,
    Context,
    Decision,
    DecisionRow,
    Environment,
    Strategy,
    Target,
)

ROWS = 5 + len(PLAN_FIELDS)  # fraction, stop_loss, take_profit, stop_price, the plan fields, vol
PLAN_ROWS = slice(4, 4 + len(PLAN_FIELDS))


class BarBuffer:
    """One symbol's bars in preallocated arrays: amortised O(1) append, ``window`` bars kept
    (all when None). Rows: open, high, low, close, volume; open times in ns apart."""

    def __init__(self, window: int | None, history: pd.DataFrame | None = None) -> None:
        self.window = window
        bars = None if history is None or history.empty else bars_from_candles(history, "history")
        n = 0 if bars is None else len(bars)
        keep = n if window is None else min(n, window)
        capacity = max(64, 2 * (window or max(n, 512)))
        self._data = np.empty((5, capacity))
        self._ts = np.empty(capacity, dtype=np.int64)
        if bars is not None and keep:
            for k, name in enumerate(("open", "high", "low", "close", "volume")):
                self._data[k, :keep] = getattr(bars, name)[n - keep :]
            self._ts[:keep] = bars.ts[n - keep :]
        self._rows = tuple(self._data)  # the five rows as 1-D arrays (quicker item writes)
        self._capacity = capacity
        self.size = keep
        self.start = 0
        self.last_time = None if bars is None else int(bars.ts[-1])

    def append(self, bar: Bar) -> bool:
        """Add a bar; False (nothing added) when it is not newer than the last one."""
        ts, last = bar.ns, self.last_time
        if last is not None and ts <= last:
            return False
        k = self.size
        if k == self._capacity:
            self._make_room()
            k = self.size
        o, h, lo, c, v = self._rows
        o[k], h[k], lo[k], c[k], v[k] = bar.open, bar.high, bar.low, bar.close, bar.volume
        self._ts[k] = ts
        self.size = k = k + 1
        window = self.window
        if window is not None and k - self.start > window:
            self.start = k - window
        self.last_time = ts
        return True

    def _make_room(self) -> None:
        lo, hi = self.start, self.size
        if self.window is None:  # grow
            data = np.empty((5, 2 * self._ts.shape[0]))
            ts = np.empty(2 * self._ts.shape[0], dtype=np.int64)
            data[:, : hi - lo], ts[: hi - lo] = self._data[:, lo:hi], self._ts[lo:hi]
            self._data, self._ts, self._rows = data, ts, tuple(data)
            self._capacity = ts.shape[0]
        else:  # shift the kept window to the front
            self._data[:, : hi - lo] = self._data[:, lo:hi]
            self._ts[: hi - lo] = self._ts[lo:hi]
        self.size, self.start = hi - lo, 0

    def column(self, k: int) -> np.ndarray:
        return self._data[k, self.start : self.size]

    def tail(self) -> Bars:
        lo, hi, d = self.start, self.size, self._data
        return Bars(
            d[0, lo:hi], d[1, lo:hi], d[2, lo:hi], d[3, lo:hi], d[4, lo:hi], self._ts[lo:hi]
        )


class StrategyFeed:
    """A strategy driven bar by bar (see the module docstring); ``record=True`` keeps every
    decision row (fraction, stop_loss, take_profit, stop_price, the plan fields, vol per symbol) in
    ``records``."""

    def __init__(self, strategy: Strategy, env: Environment, record: bool = False) -> None:
        if strategy.needs_model and env.bundle is None:
            raise ConfigError(f"strategy {strategy.name} trades a model: give --model BUNDLE")
        self.strategy, self.symbols = strategy, tuple(env.symbols)
        strategy.setup(env)
        self.buffers = {s: BarBuffer(strategy.window, env.history.get(s)) for s in self.symbols}
        self.ctx = Context(self.symbols, env.timeframe, self.buffers)
        self._index = {s: j for j, s in enumerate(self.symbols)}
        self._none = np.full((ROWS, len(self.symbols)), np.nan)  # rows are never written after
        self._none.setflags(write=False)  # they are made: answers share them without copies
        self._row = self._none
        self._targets = _targets(self._none)
        self._answers: dict[tuple[float, float], tuple[np.ndarray, BarTargets]] = {}
        self.records: list[np.ndarray] | None = [] if record else None
        self.decided = False  # whether the last ``at`` asked the strategy (a new bar)
        self.explained: dict[str, Mapping[str, Any]] = {}  # ``Target.info`` of that answer

    def bind(self, portfolio: Any, risk: Any) -> None:
        """Give ``on_bar`` the account (positions, equity) and the risk state."""
        self.ctx._portfolio, self.ctx._risk = portfolio, risk

    def _push(self, bars: Mapping[str, Bar]) -> bool:
        fresh = False
        for s, buffer in self.buffers.items():
            bar = bars.get(s)
            if bar is not None and buffer.append(bar):
                fresh = True
        return fresh

    def observe(self, bars: Mapping[str, Bar]) -> None:
        """A bar without a decision: the buffers and the strategy's state stay whole."""
        if self._push(bars):
            self.ctx.bars = bars
            self.strategy.observe(self.ctx)

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        self.decided = False
        if self._push(bars):
            ctx = self.ctx
            ctx.i, ctx.bars = i, bars
            decision = self.strategy.on_bar(ctx)
            self.decided = True
            if self.explained:
                self.explained = {}
            if decision is None:
                if self._row is not self._none:
                    self._row, self._targets = self._none, _targets(self._none)
            elif isinstance(decision, float):
                self._row, self._targets = self._answer(decision)
            else:
                self._row = self._decode(decision)
                self._targets = _targets(self._row)
        if self.records is not None:
            self.records.append(self._row)
        return self._targets

    def decision_rows(self, bars: Mapping[str, Bar]) -> tuple[Any, str, list[DecisionRow]]:
        """What a run records of the strategy's answer at the last bar it was asked: the bar's
        time, the strategy's name and per symbol ``(symbol, target fraction (NaN: none), the
        bar's close, Target.info)``; no rows when the bar was not new or nothing was decided."""
        rows: list[DecisionRow] = []
        for j, s in enumerate(self.symbols if self.decided else ()):
            target, info = float(self._row[0, j]), self.explained.get(s)
            if info is not None or not math.isnan(target):
                rows.append((s, target, float(bars[s].close), info))
        return self.ctx.time, self.strategy.name, rows

    def _answer(self, target: float) -> tuple[np.ndarray, BarTargets]:
        """The row and targets of a one-number answer, made once per value (rows are
        read-only, so answers share them; a strategy flipping between a few targets allocates
        nothing per bar); a zero keeps its sign."""
        key = (target, math.copysign(1.0, target))
        known = self._answers.get(key)
        if known is None:
            row = self._decode(target)
            known = (row, _targets(row))
            if len(self._answers) >= 64:
                self._answers.clear()
            self._answers[key] = known
        return known

    def _decode(self, decision: Decision) -> np.ndarray:
        """A decision as rows (fraction, stop_loss, take_profit, stop_price, the plan fields,
        vol) × symbols."""
        row = np.full((ROWS, len(self.symbols)), np.nan)
        if not isinstance(decision, Mapping):
            if len(self.symbols) != 1:
                raise ConfigError(
                    f"strategy {self.strategy.name}: on_bar returned one value for "
                    f"{len(self.symbols)} symbols; return a mapping {{symbol: target}}"
                )
            decision = {self.symbols[0]: decision}
        for symbol, value in decision.items():
            j = self._index.get(symbol)
            if j is None:
                raise ConfigError(f"strategy {self.strategy.name}: unknown symbol {symbol!r}")
            if isinstance(value, Target):
                row[:4, j] = (value.fraction, value.stop_loss, value.take_profit, value.stop_price)
                row[-1, j] = value.vol
                plan = value.plan_row()
                if plan is not None:
                    row[PLAN_ROWS, j] = plan
                if value.info is not None:
                    self.explained[symbol] = value.info
            elif value is not None:
                row[0, j] = _number(value, self.strategy.name, symbol)
        row.setflags(write=False)
        return row


def _targets(row: np.ndarray) -> BarTargets:
    plan = row[PLAN_ROWS]
    vol = row[-1]
    return BarTargets(
        row[0], row[3], row[1], row[2], None if np.isnan(plan).all() else plan,
        None if np.isnan(vol).all() else vol,
    )  # fmt: skip


def _number(value: Any, name: str, symbol: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"strategy {name}: target for {symbol} must be a number or Target, got {value!r}"
        ) from None
    if math.isinf(out):
        raise ConfigError(f"strategy {name}: target for {symbol} is infinite")
    return out


class Protected:
    """A target feed whose entries all carry the run's ``stop_loss`` / ``take_profit``
    (fractions; None keeps the strategy's own): the ``--stop-loss`` / ``--take-profit`` options
    of backtest, paper and live. Everything else is the wrapped feed's."""

    def __init__(self, inner: Any, stop_loss: float | None, take_profit: float | None) -> None:
        self.inner, self.stop_loss, self.take_profit = inner, stop_loss, take_profit
        self._last: tuple[BarTargets | None, BarTargets | None] = (None, None)

    def __getattr__(self, name: str) -> Any:  # bind, observe, records …
        return getattr(self.inner, name)

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        row = self.inner.at(i, bars)
        if row is self._last[0] and self._last[1] is not None:  # a repeated answer: no copies
            return self._last[1]
        out = self._protect(row)
        self._last = (row, out)
        return out

    def _protect(self, row: BarTargets) -> BarTargets:
        stop_loss, take_profit, stop_price = row.stop_loss, row.take_profit, row.stop_price
        if self.stop_loss is not None:
            stop_loss = np.full_like(row.fraction, self.stop_loss)
            stop_price = np.full_like(row.fraction, np.nan)
        if self.take_profit is not None:
            take_profit = np.full_like(row.fraction, self.take_profit)
        return BarTargets(row.fraction, stop_price, stop_loss, take_profit, row.plan, row.vol)


def protect(feed: Any, stop_loss: float | None, take_profit: float | None) -> Any:
    """``feed`` with the run's stop / take-profit overrides (itself when there are none)."""
    if stop_loss is None and take_profit is None:
        return feed
    return Protected(feed, stop_loss, take_profit)
