"""``run_backtest``: candles + target positions → BacktestResult, via the compiled kernel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from numba import njit

from aitrader.data.schema import COLUMNS
from aitrader.engine.baselines import buy_and_hold_targets, sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.kernel import N_FILL, N_TRADE, C, simulate_into, workspace
from aitrader.engine.records import fills_frame, trades_frame
from aitrader.engine.result import BacktestResult
from aitrader.errors import ConfigError, DataError

Candles: TypeAlias = pd.DataFrame | Mapping[str, pd.DataFrame]
Inputs: TypeAlias = float | np.ndarray | pd.Series | pd.DataFrame


@dataclass(frozen=True)
class RunOptions:
    """Optional inputs of a run: brackets, funding, sub-bars, labels."""

    stop_loss: Inputs | None = None  # fraction of entry price, per bar of the decision
    take_profit: Inputs | None = None
    funding: pd.Series | pd.DataFrame | None = None  # rate per funding time (+: longs pay)
    sub_bars: Candles | None = None  # lower-timeframe candles to replay ambiguous bars
    timeframe: str | None = None  # inferred from the index when None
    calendar: str = "crypto"
    name: str = "strategy"
    benchmarks: bool = True


@dataclass(frozen=True)
class Market:
    """Candles of one or more symbols on one shared index.

    ``columns``: open, high, low, close and volume, each a read-only C-contiguous (bars,
    symbols) float64 array (the kernel's ``bars``). One symbol's are views of its frame's
    columns, copied only when a column is not contiguous float64.
    """

    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    columns: tuple[np.ndarray, ...]
    first: pd.DataFrame

    @property
    def shape(self) -> tuple[int, int]:
        """(bars, symbols)."""
        return len(self.index), len(self.symbols)

    @property
    def close(self) -> np.ndarray:
        """(bars, symbols) closes."""
        return self.columns[C]

    def closes(self) -> pd.DataFrame:
        """Close of every symbol, one column each, on the shared index (one symbol's is a
        copy-on-write selection of its frame's column: no copy until either is written)."""
        if len(self.symbols) == 1 and self.first["close"].dtype == np.float64:
            frame = self.first["close"].to_frame(self.symbols[0])
            frame.index = self.index
            return frame
        return pd.DataFrame(self.close, index=self.index, columns=list(self.symbols))


def market(data: Candles, symbol: str = "asset") -> Market:
    """The candles of one or several symbols; every symbol must share the same index."""
    frames = {symbol: data} if isinstance(data, pd.DataFrame) else dict(data)
    if not frames:
        raise DataError("run_backtest: no candles given")
    symbols = tuple(frames)
    first = frames[symbols[0]]
    index = pd.DatetimeIndex(first.index)
    for name, frame in frames.items():
        if frame.index is not first.index and not index.equals(frame.index):
            raise DataError(f"{name}: candles must share the index of {symbols[0]}; align them")
    if len(index) == 0:
        raise DataError(f"{symbols[0]}: no candles")
    return Market(symbols, index, _columns(frames, symbols), first)


def _columns(
    frames: Mapping[str, pd.DataFrame], symbols: tuple[str, ...]
) -> tuple[np.ndarray, ...]:
    """Each of COLUMNS as a read-only (bars, symbols) float64 array; no copy for one symbol
    whose columns are contiguous float64 (the usual frame), one copy per column otherwise."""
    n, out = len(frames[symbols[0]]), []
    for name in COLUMNS:
        if len(symbols) == 1:
            values = frames[symbols[0]][name].to_numpy(np.float64)
            column = np.ascontiguousarray(values).reshape(n, 1)
        else:
            column = np.empty((n, len(symbols)))
            for j, symbol in enumerate(symbols):
                column[:, j] = frames[symbol][name].to_numpy(np.float64)
        column.flags.writeable = False  # one array type for the kernel, views or copies
        out.append(column)
    return tuple(out)


def as_matrix(values: Inputs | None, mkt: Market, what: str) -> np.ndarray:
    """Per-bar, per-symbol inputs as float64 (n, k); a scalar or None broadcasts as (1, k)."""
    n, k = mkt.shape
    if values is None or np.isscalar(values):
        return np.full((1, k), np.nan if values is None else float(values))  # type: ignore[arg-type]
    if isinstance(values, pd.DataFrame):
        missing = [s for s in mkt.symbols if s not in values.columns]
        if missing:
            raise ConfigError(f"{what}: no column for symbol(s) {', '.join(missing)}")
        values = _on_bars(values, mkt).loc[:, list(mkt.symbols)].to_numpy(np.float64)
    elif isinstance(values, pd.Series):
        values = _on_bars(values, mkt).to_numpy(np.float64)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None] if k == 1 else np.repeat(array[:, None], k, axis=1)
    if array.shape != (n, k):
        raise ConfigError(f"{what}: expected shape ({n}, {k}), got {array.shape}")
    return np.ascontiguousarray(array)


def _on_bars(values: pd.Series | pd.DataFrame, mkt: Market) -> Any:
    """Time-indexed inputs are aligned to the bars; anything else is taken positionally."""
    if isinstance(values.index, pd.DatetimeIndex):
        return values.reindex(mkt.index)
    return values


def funding_matrix(funding: pd.Series | pd.DataFrame | None, mkt: Market) -> np.ndarray:
    """Funding rates moved onto the first bar opening at or after each funding time."""
    k = len(mkt.symbols)
    if funding is None:
        return np.zeros((1, k))
    frame = funding.to_frame(mkt.symbols[0]) if isinstance(funding, pd.Series) else funding
    if isinstance(funding, pd.Series) and k > 1:
        frame = pd.DataFrame({s: funding for s in mkt.symbols})
    out = np.zeros((len(mkt.index), k))
    for j, symbol in enumerate(mkt.symbols):
        if symbol in frame.columns:
            column = frame[symbol].dropna()
            rows = mkt.index.searchsorted(pd.DatetimeIndex(column.index), side="left")
            keep = rows < len(mkt.index)
            np.add.at(out[:, j], rows[keep], column.to_numpy(np.float64)[keep])
    return out


def sub_bar_arrays(sub_bars: Candles | None, mkt: Market) -> tuple[np.ndarray, np.ndarray]:
    """Lower-timeframe (open, high, low) per symbol and each bar's first sub-bar row."""
    k = len(mkt.symbols)
    if sub_bars is None:
        return np.zeros((0, k, 3)), np.zeros(0, dtype=np.int64)
    sub = market(sub_bars, mkt.symbols[0])
    if sub.symbols != mkt.symbols:
        raise DataError(f"sub_bars: symbols {sub.symbols} differ from {mkt.symbols}")
    starts = sub.index.searchsorted(mkt.index, side="left")
    bounds = np.append(starts, len(sub.index)).astype(np.int64)
    return np.stack(sub.columns[:3], axis=2), bounds


def infer_timeframe(index: pd.DatetimeIndex) -> str:
    """The ccxt timeframe string of the index's most common bar spacing."""
    if len(index) < 2:
        raise ConfigError("cannot infer the timeframe from fewer than 2 bars; pass timeframe=")
    steps = np.diff(index.as_unit("ns").asi8)
    seconds = int(pd.Series(steps).mode().iloc[0] // 10**9)
    return seconds_to_timeframe(seconds)


def seconds_to_timeframe(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@njit(cache=True)
def _target_changes(targets: np.ndarray) -> int:
    """Bars where a symbol's forward-filled target differs from the bar before (NaN counting
    as different from anything), plus symbols with a target on the first bar."""
    count = 0
    for j in range(targets.shape[1]):
        previous = targets[0, j]
        count += previous == previous
        for i in range(1, targets.shape[0]):
            value = targets[i, j] if targets[i, j] == targets[i, j] else previous
            count += value != previous
            previous = value
    return count


def _capacity(targets: np.ndarray) -> np.ndarray:
    """A first guess of the fill and trade buffer sizes from the number of target changes."""
    changes, k = int(_target_changes(targets)), targets.shape[1]
    return np.array([4 * changes + 8 * k + 64, 2 * changes + 2 * k + 16], dtype=np.int64)


def simulate_arrays(
    mkt: Market,
    targets: np.ndarray,
    config: BrokerConfig,
    options: RunOptions,
    positions: bool = True,
) -> tuple[Any, ...]:
    """Run the kernel, growing the record buffers until nothing overflows: equity, cash, gross
    notional, positions (each bar's; only the last bar's, (1, k), when ``positions`` is False),
    fills, trades, overflow (as ``kernel.simulate``)."""
    brackets = np.ascontiguousarray(
        np.stack(
            np.broadcast_arrays(
                as_matrix(options.stop_loss, mkt, "stop_loss"),
                as_matrix(options.take_profit, mkt, "take_profit"),
            ),
            axis=2,
        )
    )
    funding = funding_matrix(options.funding, mkt)
    sub, starts = sub_bar_arrays(options.sub_bars, mkt)
    capacity, params = _capacity(targets), config.params()
    n, k = mkt.shape
    marks = (np.empty(n), np.empty(n), np.empty(n), np.empty((n if positions else 1, k)))
    inputs = (targets, brackets, funding, sub, starts)
    while True:
        records = (np.empty((capacity[0], N_FILL)), np.empty((capacity[1], N_TRADE)))
        nf, nt, overflow = simulate_into(mkt.columns, inputs, params, records, marks, workspace(k))
        if not overflow:
            return (*marks, records[0][:nf], records[1][:nt], overflow)
        capacity = capacity * 2


def run_backtest(
    data: Candles,
    targets: Inputs,
    config: BrokerConfig | None = None,
    options: RunOptions | None = None,
) -> BacktestResult:
    """Simulate target positions (fraction of equity per symbol; NaN keeps the last target).

    A target that differs from the previous one is decided at the bar's close and filled at the
    next open (or that close with ``fill_at="close"``); see ``aitrader.engine.kernel``.
    """
    config = config or BrokerConfig()
    options = options or RunOptions()
    mkt = market(data)
    target_array = as_matrix(targets, mkt, "targets")
    if target_array.shape[0] != len(mkt.index):
        raise ConfigError("targets: one value per bar is required")
    equity, cash, gross, _pos, fills, trades, _ = simulate_arrays(
        mkt, target_array, config, options, positions=False
    )
    timeframe = options.timeframe or infer_timeframe(mkt.index)
    benchmarks = baseline_curves(mkt, config, options) if options.benchmarks else {}
    exposure = np.divide(gross, equity, out=gross)  # the kernel's fresh arrays: no copies
    return BacktestResult(
        equity=pd.Series(equity, index=mkt.index, name="equity", copy=False),
        cash=pd.Series(cash, index=mkt.index, name="cash", copy=False),
        exposure=pd.Series(exposure, index=mkt.index, name="exposure", copy=False),
        trades=partial(trades_frame, trades, mkt.symbols, mkt.index),
        fills=partial(fills_frame, fills, mkt.symbols, mkt.index),
        initial_cash=config.initial_cash,
        timeframe=timeframe,
        calendar=options.calendar,
        zero_cost=config.zero_cost,
        name=options.name,
        prices=mkt.first,
        closes=mkt.closes(),
        benchmarks=benchmarks,
    )


def baseline_curves(
    data: Candles | Market, config: BrokerConfig, options: RunOptions
) -> dict[str, pd.Series]:
    """Buy-and-hold and SMA(10/30) crossover equity on the same data with the same costs."""
    mkt = data if isinstance(data, Market) else market(data)
    n, k = mkt.shape
    plain = RunOptions(timeframe=options.timeframe, calendar=options.calendar, benchmarks=False)
    crossover = np.column_stack([sma_crossover_targets(mkt.close[:, j]) / k for j in range(k)])
    curves = {}
    for name, targets in (
        ("buy_and_hold", buy_and_hold_targets(n, k)),
        ("sma_crossover", crossover),
    ):
        equity = simulate_arrays(mkt, targets, config, plain, positions=False)[0]
        curves[name] = pd.Series(equity, index=mkt.index, name=name, copy=False)
    return curves
