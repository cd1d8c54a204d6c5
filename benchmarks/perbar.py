"""Per-bar strategies for bench_engine.py: a user's Python ``on_bar`` SMA(10/30) crossover with a
fixed size on the event-driven engine, the same rule through the risk-managed path, and
backtesting.py running it.

* ``engine``: ``Engine`` + ``SimBroker`` + a Python strategy that keeps its own running SMA sums
  and buys / sells a fixed 1 unit with market orders (filled at the next open).
* ``managed``: ``Engine`` + ``ManagedPolicy`` + ``RiskManager`` + ``SimBroker`` with a per-bar
  target feed (the same running sums; target 50 % of equity long or flat; no stop, so the
  ``require_stop`` limit is off).
* ``backtesting.py``: ``Backtest`` with the same crossover in ``next`` (SMAs precomputed with
  ``self.I``, as its users write it), buying 1 unit and closing on the opposite cross.

* ``strategy contract``: the same rule written as a user writes it, an
  :class:`aitrader.strategy.Strategy` subclass whose ``on_bar(ctx)`` returns the target, run by
  ``aitrader.strategy.run.backtest_strategy`` bar by bar (StrategyFeed → the managed path).
* ``floor``: the strategy over ``replay`` without engine or broker (bars + ``on_bar`` only).

All: 0.1 % taker fee, no slippage, cash 10M (so 1 unit is always affordable).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.engine.backtest import RunOptions
from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.loop import Engine, replay
from aitrader.engine.managed_policy import BarTargets, ManagedPolicy
from aitrader.engine.types import Bar, Order
from aitrader.features.indicators import sma
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import MemoryRiskStateStore
from aitrader.strategy import Context, Environment, Strategy
from aitrader.strategy.run import RunSpec, backtest_strategy

FAST, SLOW, SIZE, FEE, CASH = 10, 30, 1.0, 0.001, 10_000_000.0
CONFIG = BrokerConfig(
    initial_cash=CASH, taker_fee=FEE, maker_fee=FEE, slippage_bps=0, impact=0,
    max_volume_share=None,
)  # fmt: skip


class RunningSma:
    """Fast and slow SMA of the closes seen so far (running sums)."""

    def __init__(self) -> None:
        self.closes: list[float] = []
        self.fast_sum = self.slow_sum = 0.0

    def push(self, close: float) -> bool | None:
        """Add a close; whether the fast SMA is above the slow one (None: not enough bars)."""
        closes = self.closes
        closes.append(close)
        n = len(closes)
        self.fast_sum += close
        self.slow_sum += close
        if n > FAST:
            self.fast_sum -= closes[n - 1 - FAST]
        if n > SLOW:
            self.slow_sum -= closes[n - 1 - SLOW]
        if n < SLOW:
            return None
        return self.fast_sum / FAST > self.slow_sum / SLOW


class SmaCross:
    """A user's per-bar strategy: buy 1 unit on a golden cross, sell it on a death cross."""

    def __init__(self, symbol: str) -> None:
        self.symbol, self.sma, self.long = symbol, RunningSma(), False

    def on_bar(self, i: int, bars: Mapping[str, Bar]) -> Sequence[Order]:
        above = self.sma.push(bars[self.symbol].close)
        if above is None or above == self.long:
            return ()
        self.long = above
        qty = SIZE if above else -SIZE
        return (Order(self.symbol, f"{self.symbol}:{i}", qty=qty),)


class SmaFeed:
    """The same crossover as a per-bar target feed: 50 % of equity long, or flat."""

    def __init__(self, symbol: str) -> None:
        self.symbol, self.sma = symbol, RunningSma()
        self.none = np.full(1, math.nan)

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        above = self.sma.push(bars[self.symbol].close)
        fraction = np.full(1, math.nan if above is None else (0.5 if above else 0.0))
        return BarTargets(fraction, self.none, self.none, self.none)


def engine(df: pd.DataFrame) -> dict[str, float]:
    broker = SimBroker(["X"], CONFIG)
    result = Engine(SmaCross("X"), broker).run(replay({"X": df}))
    return {"final_equity": result.equity[-1], "fills": len(result.fills)}


def floor(df: pd.DataFrame) -> dict[str, float]:
    """The same strategy over ``replay`` with no engine or broker at all: what building a
    ``Bar`` (with its ``pd.Timestamp``) per bar and the strategy itself cost, the per-bar
    path's floor."""
    strategy, orders = SmaCross("X"), 0
    for i, bars in enumerate(replay({"X": df})):
        orders += len(strategy.on_bar(i, bars))
    return {"final_equity": math.nan, "fills": orders}


def managed(df: pd.DataFrame) -> dict[str, float]:
    broker = SimBroker(["X"], CONFIG)
    risk = RiskManager(RiskConfig(limits=LIMITS), store=MemoryRiskStateStore())
    policy = ManagedPolicy(["X"], SmaFeed("X"), risk, broker)
    result = Engine(policy, broker).run(replay({"X": df}))
    return {"final_equity": result.equity[-1], "fills": len(result.fills)}


LIMITS = LimitsConfig(require_stop=False, max_trades_per_day=10_000, max_drawdown=0.99,
                      drawdown_reduce_from=0.98, max_daily_loss=1.0)  # fmt: skip


class ContractSma(Strategy):
    """The crossover through the Strategy contract: 50 % of equity long, or flat."""

    window = 1

    def setup(self, env: Environment) -> None:
        self.sma = RunningSma()

    def on_bar(self, ctx: Context) -> float | None:
        above = self.sma.push(ctx.bars["X"].close)
        return None if above is None else (0.5 if above else 0.0)


def contract(df: pd.DataFrame) -> dict[str, float]:
    options = RunOptions(timeframe="1m", benchmarks=False)
    spec = RunSpec(CONFIG, RiskConfig(limits=LIMITS), options, start=0, per_bar=True)
    run = backtest_strategy(ContractSma(), {"X": df}, Settings(), spec)
    return {"final_equity": float(run.result.equity.iloc[-1]), "fills": len(run.result.fills)}


def backtesting_py(df: pd.DataFrame) -> dict[str, float]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            close = np.asarray(self.data.Close, dtype=np.float64)
            self.fast, self.slow = self.I(sma, close, FAST), self.I(sma, close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=int(SIZE))
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    data = df.rename(columns=str.capitalize).tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(data, Cross, cash=CASH, commission=FEE).run()
    return {"final_equity": float(stats["Equity Final [$]"]), "fills": 2 * int(stats["# Trades"])}


RUNNERS = {"engine (user on_bar)": engine, "managed (risk path)": managed,
           "strategy contract (user Strategy)": contract,
           "backtesting.py": backtesting_py, "floor (bars + on_bar only)": floor}  # fmt: skip
