"""The decision path shared by backtest, paper and live: per-bar targets → order intents.

The rule ``target_changed`` is compiled once: the vectorised kernel applies it per symbol inside
its bar loop, and ``decide`` applies it to one bar's row for ``TargetPolicy.on_bar`` (one bar at a
time, for the event-driven engine and live runner).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from numba import njit

from aitrader.engine.records import order_id
from aitrader.engine.types import Bar, Order


@njit(cache=True, inline="always")
def target_changed(target: float, last: float) -> bool:
    """The decision rule: a target (NaN: no decision) that differs from the last one is new."""
    return target == target and target != last


@njit(cache=True, inline="always")
def decide(targets: np.ndarray, i: int, last: np.ndarray, changed: np.ndarray) -> bool:
    """Flag symbols whose target changed at bar i (NaN: no decision); updates ``last``."""
    any_change = False
    for j in range(targets.shape[1]):
        t = targets[i, j]
        changed[j] = target_changed(t, last[j])
        if changed[j]:
            last[j] = t
            any_change = True
    return any_change


class BarPolicy(Protocol):
    """What the engine asks at each bar's close for orders (``ManagedPolicy`` in every run;
    users write an :class:`aitrader.strategy.Strategy`, which reaches the engine through it)."""

    def on_bar(self, i: int, bars: Mapping[str, Bar]) -> Sequence[Order]: ...


class TargetPolicy:
    """Precomputed target fractions (bars × symbols) with optional stop-loss / take-profit.

    At each bar's close a target that differs from the last one becomes a market order sized
    at fill time to that fraction of equity, with its bracket attached.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        targets: np.ndarray,
        brackets: np.ndarray | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.targets = np.ascontiguousarray(targets, dtype=np.float64).reshape(len(targets), -1)
        k = len(self.symbols)
        self.brackets = np.full((1, k, 2), np.nan) if brackets is None else brackets
        self.last = np.full(k, np.nan)
        self._changed = np.zeros(k, dtype=np.bool_)

    def on_bar(self, i: int, bars: Mapping[str, Bar]) -> Sequence[Order]:
        decide(self.targets, i, self.last, self._changed)
        changed = self._changed
        row = self.brackets[i if self.brackets.shape[0] > 1 else 0]
        orders = []
        for j in np.flatnonzero(changed):
            symbol = self.symbols[j]
            sl, tp = float(row[j, 0]), float(row[j, 1])
            orders.append(
                Order(
                    symbol=symbol,
                    client_order_id=order_id(symbol, i, "signal"),
                    target_fraction=float(self.last[j]),
                    stop_loss=None if np.isnan(sl) else sl,
                    take_profit=None if np.isnan(tp) else tp,
                )
            )
        return orders
