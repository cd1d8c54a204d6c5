"""Run a strategy over stored bars: the backtest every command uses, and the equality check.

:func:`backtest_strategy` replays the bars through the risk-managed path of paper and live runs
(:func:`~aitrader.engine.managed.run_feed_backtest`: ManagedPolicy → RiskManager → SimBroker).
The targets come from the strategy's ``vectorized`` method when it has one (fast), else from
``on_bar`` bar by bar through :class:`~aitrader.strategy.feed.StrategyFeed` — the feed a paper
or live run uses. :func:`check_strategy` runs both and reports the first bar where they differ.

Bars before ``start`` are the strategy's warm-up history: seen, never traded (a paper replay
seeds its strategy with the same bars).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.engine.backtest import RunOptions
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import ManagedResult, run_feed_backtest
from aitrader.engine.managed_policy import ArrayFeed, TargetFeed
from aitrader.errors import ConfigError, DataError
from aitrader.risk.config import RiskConfig
from aitrader.strategy.base import PLAN_FIELDS, Environment, Strategy, TargetFrame, as_frame
from aitrader.strategy.feed import StrategyFeed, protect

Candles = Mapping[str, pd.DataFrame]
FIELDS = ("fraction", "stop_loss", "take_profit", "stop_price", *PLAN_FIELDS, "vol")


@dataclass(frozen=True)
class RunSpec:
    """How a strategy runs over stored bars: costs, risk, the first traded bar (position in the
    aligned bars; None: the strategy's ``warmup``), per-bar or vectorised, an attached model
    bundle, and report labels (``options``)."""

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    options: RunOptions = field(default_factory=RunOptions)
    start: int | None = None
    per_bar: bool = False
    bundle: Any = None
    stop_loss: float | None = None  # overrides of every entry's protection (fractions)
    take_profit: float | None = None


def align(candles: Candles) -> dict[str, pd.DataFrame]:
    """Every symbol's candles on the bars all of them have (a portfolio decides together)."""
    if not candles:
        raise DataError("no candles given")
    index = None
    for frame in candles.values():
        index = frame.index if index is None else index.intersection(frame.index)
    assert index is not None
    if len(index) == 0:
        raise DataError(f"{', '.join(candles)}: no bar time common to every symbol")
    return {s: frame.loc[index] for s, frame in candles.items()}


def first_traded(strategy: Strategy, n_bars: int, start: int | None) -> int:
    """The position of the first traded bar (``start``, else after the strategy's warm-up)."""
    first = strategy.warmup if start is None else start
    if first >= n_bars:
        need = "" if start is not None else f" (it needs {strategy.warmup} bars of warm-up)"
        raise DataError(
            f"strategy {strategy.name}: {n_bars} bars leave none to trade after bar {first}{need}"
        )
    return max(first, 0)


def environment(
    strategy: Strategy, data: Candles, settings: Settings, spec: RunSpec, start: int
) -> Environment:
    """What ``setup`` gets: symbols, timeframe, settings, bundle and the bars before ``start``."""
    timeframe = spec.options.timeframe or _timeframe(data)
    history = {s: frame.iloc[:start] for s, frame in data.items()}
    return Environment(tuple(data), timeframe, settings, spec.bundle, history)


def _timeframe(data: Candles) -> str:
    from aitrader.engine.backtest import infer_timeframe

    return infer_timeframe(pd.DatetimeIndex(next(iter(data.values())).index))


def vectorized_feed(strategy: Strategy, data: Candles, env: Environment, start: int) -> ArrayFeed:
    """The strategy's whole target arrays (rows from ``start``) as the policy's feed."""
    strategy.setup(env)
    method: Callable[..., TargetFrame] = strategy.vectorized  # type: ignore[attr-defined]
    frame = method(data, start)
    index, symbols = next(iter(data.values())).index, list(data)

    def rows(values: pd.DataFrame | None, what: str) -> np.ndarray:
        if values is None:
            return np.full((len(index) - start, len(symbols)), np.nan)
        return as_frame(values, index, symbols, what).to_numpy()[start:]

    arrays = [rows(getattr(frame, name), name) for name in FIELDS]
    plan = None
    if any(getattr(frame, name) is not None for name in PLAN_FIELDS):
        plan = np.stack(arrays[4:-1], axis=1)  # bars × plan fields × symbols
        for k in (PLAN_FIELDS.index("break_even"), PLAN_FIELDS.index("time_stop")):
            plan[:, k][plan[:, k] == 0.0] = np.nan  # "no" reads as none, as in a Target
    vol = None if frame.vol is None else arrays[-1]
    return ArrayFeed(arrays[0], arrays[3], arrays[1], arrays[2], plan, vol)


def _split(
    strategy: Strategy, data: Candles, spec: RunSpec
) -> tuple[dict[str, pd.DataFrame], int, dict[str, pd.DataFrame]]:
    """The aligned bars, the position of the first traded one, and the traded bars."""
    aligned = align(data)
    start = first_traded(strategy, len(next(iter(aligned.values()))), spec.start)
    return aligned, start, {s: frame.iloc[start:] for s, frame in aligned.items()}


def strategy_feed(
    strategy: Strategy, data: Candles, settings: Settings, spec: RunSpec
) -> tuple[TargetFeed, dict[str, pd.DataFrame]]:
    """The feed that decides the traded bars, and those bars (after the warm-up)."""
    aligned, start, traded = _split(strategy, data, spec)
    env = environment(strategy, aligned, settings, spec, start)
    if strategy.has_vectorized and not spec.per_bar:
        feed: TargetFeed = vectorized_feed(strategy, aligned, env, start)
    else:
        feed = StrategyFeed(strategy, env)
    return protect(feed, spec.stop_loss, spec.take_profit), traded


def backtest_strategy(
    strategy: Strategy, data: Candles, settings: Settings, spec: RunSpec
) -> ManagedResult:
    """Backtest ``strategy`` on ``data`` through the risk-managed engine (see the module doc)."""
    feed, traded = strategy_feed(strategy, data, settings, spec)
    options = spec.options
    if options.name == "strategy":
        options = replace(options, name=strategy.name)
    return run_feed_backtest(traded, feed, spec.broker, spec.risk, options)


def no_trades_reason(strategy: Strategy, run: ManagedResult) -> str | None:
    """Why a finished run of ``strategy`` filled nothing, in one line (None: it traded)."""
    if len(run.result.fills):
        return None
    idle = strategy.idle_reason()
    if idle is not None:
        return idle
    decisions, bars = run.decisions, len(run.result.equity)
    if decisions.empty:
        return f"strategy {strategy.name} asked for no position in the {bars} traded bars"
    rejected = decisions.loc[decisions["action"] == "reject", "reason"]
    if len(rejected) == len(decisions):
        return (
            f"the risk manager rejected all {len(rejected)} of its orders (most: "
            f"{rejected.value_counts().index[0]})"
        )
    return f"its {len(decisions)} approved orders found no fill (volume caps, unfilled limits)"


@dataclass(frozen=True)
class CheckReport:
    """``on_bar`` against ``vectorized`` over the same bars: how many bars and decisions were
    compared, the first difference (None: equal), and both backtests' final equity."""

    bars: int
    decisions: int
    difference: dict[str, Any] | None
    equity_per_bar: float
    equity_vectorized: float

    @property
    def equal(self) -> bool:
        return self.difference is None and self.equity_per_bar == self.equity_vectorized


def check_strategy(
    make: Callable[[], Strategy],
    data: Candles,
    settings: Settings,
    spec: RunSpec,
    rtol: float = 1e-9,
) -> CheckReport:
    """Run a fresh strategy from ``make`` bar by bar and another vectorised over ``data`` and
    compare their decisions bar by bar (NaN = no decision; values within ``rtol``)."""
    probe = make()
    if not probe.has_vectorized:
        raise ConfigError(f"strategy {probe.name} has no vectorized method: nothing to check")
    aligned, start, traded = _split(probe, data, spec)
    feed = StrategyFeed(probe, environment(probe, aligned, settings, spec, start), record=True)
    slow = run_feed_backtest(traded, feed, spec.broker, spec.risk, spec.options)
    vector = make()
    env = environment(vector, aligned, settings, spec, start)
    arrays = vectorized_feed(vector, aligned, env, start)
    fast = run_feed_backtest(traded, arrays, spec.broker, spec.risk, spec.options)
    assert feed.records is not None
    recorded = np.stack(feed.records)  # bars × fields × symbols
    fields = (arrays.fraction, arrays.stop_loss, arrays.take_profit, arrays.stop_price)
    expected = np.stack(fields, axis=1)
    plan = arrays.plan
    if plan is None:
        plan = np.full((expected.shape[0], len(PLAN_FIELDS), expected.shape[2]), np.nan)
    vol = np.full_like(arrays.fraction, np.nan) if arrays.vol is None else arrays.vol
    expected = np.concatenate([expected, plan, vol[:, None, :]], axis=1)
    index = next(iter(traded.values())).index
    difference = first_difference(recorded, expected, index, list(traded), rtol)
    decided = int(np.isfinite(recorded[:, 0, :]).any(axis=1).sum())
    return CheckReport(
        len(index),
        decided,
        difference,
        float(slow.result.equity.iloc[-1]),
        float(fast.result.equity.iloc[-1]),
    )


def first_difference(
    got: np.ndarray, expected: np.ndarray, index: pd.Index, symbols: list[str], rtol: float
) -> dict[str, Any] | None:
    """The first (bar, field, symbol) where the per-bar decision differs from the vectorised
    one: a decision on one side only, or values apart by more than ``rtol``. Protection fields
    only count where both decided a position (an exit to flat carries none)."""
    decided = np.isfinite(got[:, 0, :]) & np.isfinite(expected[:, 0, :]) & (got[:, 0, :] != 0)
    for i in range(got.shape[0]):
        for f, name in enumerate(FIELDS):
            for j, symbol in enumerate(symbols):
                a, b = float(got[i, f, j]), float(expected[i, f, j])
                if f and not decided[i, j]:
                    continue
                if _same(a, b, rtol):
                    continue
                return {
                    **{"bar": i, "time": str(index[i]), "symbol": symbol, "field": name},
                    **{"per_bar": _json(a), "vectorized": _json(b)},
                }
    return None


def _same(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def _json(value: float) -> float | None:
    return None if math.isnan(value) else value
