"""``run_managed_backtest``: targets through the RiskManager on the event-driven engine.

The run replays candles through :class:`~aitrader.engine.loop.Engine` + ``SimBroker`` with a
:class:`~aitrader.engine.managed_policy.ManagedPolicy` — the same policy object a paper or live
runner drives bar by bar — so every order a backtest shows passed the risk checks a live order
would. With limits that never bind it reproduces :func:`run_backtest` exactly (the parity test).

The RiskManager of a backtest keeps its state in memory: a backtest never touches the live
kill-switch file named by ``RiskConfig.state_path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from aitrader.engine.backtest import (
    Candles,
    Inputs,
    Market,
    RunOptions,
    as_matrix,
    baseline_curves,
    funding_matrix,
    infer_timeframe,
    market,
    sub_bar_arrays,
)
from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine, replay
from aitrader.engine.managed_policy import ArrayFeed, ManagedPolicy, TargetFeed, decisions_frame
from aitrader.engine.records import trades_frame
from aitrader.engine.result import BacktestResult
from aitrader.engine.tradebook import TradeBook, fills_table, trade_rows
from aitrader.errors import ConfigError
from aitrader.features.indicators import atr
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import MemoryRiskStateStore, RiskState


@dataclass(frozen=True)
class AtrStop:
    """Stop ``multiple`` × ATR(``period``) from the decision bar's close (causal ATR)."""

    period: int = 14
    multiple: float = 2.0

    def __post_init__(self) -> None:
        if self.period < 2 or not self.multiple > 0:
            raise ConfigError(f"AtrStop: period ≥ 2 and multiple > 0, got {self}")


Stops: TypeAlias = Inputs | AtrStop | None
"""Per-bar stop prices (absolute, per symbol), an ATR rule, or None (``options.stop_loss``)."""


@dataclass(frozen=True)
class ManagedResult:
    """A full BacktestResult plus every RiskManager verdict (DECISION_COLUMNS)."""

    result: BacktestResult
    decisions: pd.DataFrame
    risk_state: RiskState

    @property
    def metrics(self) -> dict[str, Any]:
        """Performance metrics of the run (:func:`aitrader.analytics.metrics.compute_metrics`)."""
        from aitrader.analytics.metrics import compute_metrics

        return compute_metrics(self.result)

    @property
    def actions(self) -> pd.Series:
        """How many intents were accepted, resized and rejected."""
        return self.decisions["action"].value_counts()


def _frames(data: Candles, mkt: Market) -> dict[str, pd.DataFrame]:
    return {mkt.symbols[0]: data} if isinstance(data, pd.DataFrame) else dict(data)


def _stop_matrices(
    stops: Stops, mkt: Market, frames: Mapping[str, pd.DataFrame], options: RunOptions
) -> tuple[np.ndarray, np.ndarray]:
    """``(stop prices, stop-loss fractions)``: exactly one of them carries the stops."""
    if stops is not None and options.stop_loss is not None:
        raise ConfigError("give stops or options.stop_loss, not both")
    none = np.full((1, len(mkt.symbols)), np.nan)
    if stops is None:
        return none, as_matrix(options.stop_loss, mkt, "stop_loss")
    if isinstance(stops, AtrStop):
        columns = []
        for s in mkt.symbols:
            h, lo, c = (frames[s][k].to_numpy(np.float64) for k in ("high", "low", "close"))
            columns.append(stops.multiple * atr(h, lo, c, stops.period) / c)
        return none, np.ascontiguousarray(np.column_stack(columns))
    return as_matrix(stops, mkt, "stops"), none


def _drive(
    engine: Engine,
    broker: SimBroker,
    frames: dict[str, pd.DataFrame],
    mkt: Market,
    options: RunOptions,
) -> np.ndarray:
    """Run every bar through the engine (funding at the open of the bar each rate falls on, as
    the kernel charges it); returns the gross notional at each close."""
    sub, starts = sub_bar_arrays(options.sub_bars, mkt)
    rates = funding_matrix(options.funding, mkt)
    due = np.flatnonzero(rates.any(axis=1)) if options.funding is not None else ()
    charged = {int(i): dict(zip(mkt.symbols, map(float, rates[i]), strict=True)) for i in due}
    gross: list[float] = []
    positions, symbols, step = broker.positions, mkt.symbols, engine.on_bar
    for i, bars in enumerate(replay(frames)):
        rows = None
        if starts.shape[0]:
            rows = {s: sub[starts[i] : starts[i + 1], j] for j, s in enumerate(symbols)}
        step(bars, charged.get(i) if charged else None, rows)
        total = 0.0
        for s in symbols:
            q = positions[s].qty
            if q != 0.0:
                total += abs(q) * bars[s].close
        gross.append(total)
    return np.array(gross, dtype=np.float64)


def _result(
    data: Candles,
    mkt: Market,
    engine: Engine,
    gross: np.ndarray,
    run: tuple[BrokerConfig, RunOptions],
) -> BacktestResult:
    """The BacktestResult of the run (benchmarks from the compiled kernel, same costs)."""
    config, options = run
    fills = list(engine.broker.fills)
    book = TradeBook()
    book.extend(fills)
    closes = {s: float(mkt.close[-1, j]) for j, s in enumerate(mkt.symbols)}
    rows, reasons = trade_rows(book.snapshot(mkt.index[-1], closes), mkt.symbols, mkt.index)
    equity = np.asarray(engine.result.equity, dtype=np.float64)
    benchmarks = baseline_curves(mkt, config, options) if options.benchmarks else {}
    return BacktestResult(
        equity=pd.Series(equity, index=mkt.index, name="equity", copy=False),
        cash=pd.Series(np.asarray(engine.result.cash), index=mkt.index, name="cash", copy=False),
        exposure=pd.Series(np.divide(gross, equity), index=mkt.index, name="exposure", copy=False),
        trades=trades_frame(rows, mkt.symbols, mkt.index, reasons),
        fills=fills_table(fills, mkt.index),
        initial_cash=config.initial_cash,
        timeframe=options.timeframe or infer_timeframe(mkt.index),
        calendar=options.calendar,
        zero_cost=config.zero_cost,
        name=options.name,
        prices=mkt.first,
        closes=mkt.closes(),
        benchmarks=benchmarks,
    )


def run_managed_backtest(
    data: Candles,
    targets: Inputs,
    stops: Stops = None,
    broker_config: BrokerConfig | None = None,
    risk: RiskConfig | None = None,
    options: RunOptions | None = None,
    vol: Inputs | None = None,
) -> ManagedResult:
    """Simulate target fractions (NaN: no decision) with every order checked by a RiskManager.

    ``targets``/``stops`` take the shapes ``run_backtest`` accepts (per-symbol columns or a
    (bars, symbols) array). Stops feed the risk-per-trade check and become the stop bracket;
    ``options.take_profit`` is the take-profit bracket; ``options.funding`` is charged as the
    kernel charges it; ``vol`` (same shapes) is the σ forecast vol-target sizing divides by
    (``Target.vol``; NaN or None: the risk manager's realised estimate).
    """
    options = options or RunOptions()
    mkt = market(data)
    frames = _frames(data, mkt)
    fraction = as_matrix(targets, mkt, "targets")
    if fraction.shape[0] != len(mkt.index):
        raise ConfigError("targets: one value per bar is required")
    stop_price, stop_loss = _stop_matrices(stops, mkt, frames, options)
    sigma = None if vol is None else as_matrix(vol, mkt, "vol")
    take_profit = as_matrix(options.take_profit, mkt, "tp")
    feed = ArrayFeed(fraction, stop_price, stop_loss, take_profit, vol=sigma)
    return run_feed_backtest(data, feed, broker_config, risk, options)


def run_feed_backtest(
    data: Candles,
    feed: TargetFeed,
    broker_config: BrokerConfig | None = None,
    risk: RiskConfig | None = None,
    options: RunOptions | None = None,
) -> ManagedResult:
    """Replay ``data`` through ``feed`` (precomputed arrays or a strategy deciding bar by bar)
    → ManagedPolicy → RiskManager → SimBroker: the decision path of paper and live runs."""
    config, options = broker_config or BrokerConfig(), options or RunOptions()
    mkt = market(data)
    frames = _frames(data, mkt)
    broker = SimBroker(mkt.symbols, config)
    manager = RiskManager(risk or RiskConfig(), store=MemoryRiskStateStore())
    policy = ManagedPolicy(mkt.symbols, feed, manager, broker)
    engine = Engine(policy, broker)
    gross = _drive(engine, broker, frames, mkt, options)
    result = _result(data, mkt, engine, gross, (config, options))
    return ManagedResult(result, decisions_frame(policy.log), manager.state)
