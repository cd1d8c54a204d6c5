"""Library use in a few lines (a notebook, a script): backtest a DataFrame with a strategy.

    import aitrader
    from aitrader.data.samples import load_sample

    run = aitrader.backtest("sma-cross", load_sample("BTC-USD-1h"), fast=20, slow=60)
    run.metrics["sharpe"], run.result.equity.iloc[-1], run.result.trades.head()

The same path as ``aitrader backtest``: the strategy's targets → the risk manager → simulated
fills with the configured costs (:mod:`aitrader.strategy.run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from aitrader.config import Settings, load_settings
from aitrader.engine.backtest import RunOptions, infer_timeframe
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import ManagedResult
from aitrader.strategy.base import Strategy
from aitrader.strategy.registry import load_strategy
from aitrader.strategy.run import RunSpec, backtest_strategy


def backtest(
    strategy: Strategy | str,
    data: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    settings: Settings | None = None,
    start: int | str | pd.Timestamp | None = None,
    per_bar: bool = False,
    bundle: Any = None,
    **params: Any,
) -> ManagedResult:
    """Backtest ``strategy`` (an instance, or a name / ``module:Class`` / ``file.py:Class``
    built with ``params``) on ``data`` (one frame, named ``asset``, or ``{symbol: frame}``).

    ``settings`` default to the config file in effect (costs, risk); ``start`` is the first
    traded bar (position or date; earlier bars warm the strategy up); ``bundle`` a loaded model
    bundle for the model strategy."""
    settings = settings or load_settings()
    frames = {"asset": data} if isinstance(data, pd.DataFrame) else dict(data)
    if isinstance(strategy, str):
        strategy = load_strategy(strategy, params)
    elif params:
        raise TypeError("parameters go to the strategy's constructor when it is an instance")
    index = pd.DatetimeIndex(next(iter(frames.values())).index)
    if start is not None and not isinstance(start, int):
        stamp = pd.Timestamp(start)
        start = int(index.searchsorted(stamp if stamp.tzinfo else stamp.tz_localize("UTC")))
    options = RunOptions(timeframe=infer_timeframe(index), name=strategy.name)
    spec = RunSpec(
        BrokerConfig.from_costs(settings.costs), settings.risk, options, start, per_bar, bundle
    )
    return backtest_strategy(strategy, frames, settings, spec)
