"""Decisions: the Strategy contract, probabilities → targets, adaptive modes, trade plans.

Write a strategy: subclass :class:`Strategy` (see :mod:`aitrader.strategy.base`), then run it
with ``aitrader backtest --strategy path/to/file.py:Class`` or :func:`aitrader.backtest`.
"""

from aitrader.strategy.base import (
    Context,
    Environment,
    Param,
    Strategy,
    Target,
    TargetFrame,
)
from aitrader.strategy.registry import load_strategy, register, strategies

__all__ = [
    "Context",
    "Environment",
    "Param",
    "Strategy",
    "Target",
    "TargetFrame",
    "load_strategy",
    "register",
    "strategies",
]
