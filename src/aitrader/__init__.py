"""aitrader: AI-assisted trading bot — data, leak-free ML, backtests, paper and live.

``aitrader.backtest(strategy, data)`` backtests in one call (:mod:`aitrader.api`); strategies
subclass :class:`aitrader.Strategy`. Both are imported on first use, so ``import aitrader``
(and the CLI's start-up) stays light.
"""

from typing import Any

__version__ = "0.1.0"
DEFAULT_CONFIG_NAME = "aitrader.yaml"
"""The config file's default name (here, not in :mod:`aitrader.config`: the CLI's help is quick)."""
__all__ = ["Param", "Strategy", "Target", "TargetFrame", "backtest"]


def __getattr__(name: str) -> Any:
    if name == "backtest":
        from aitrader.api import backtest

        return backtest
    if name in ("Param", "Strategy", "Target", "TargetFrame"):
        import aitrader.strategy.base as base

        return getattr(base, name)
    raise AttributeError(f"module 'aitrader' has no attribute {name!r}")
