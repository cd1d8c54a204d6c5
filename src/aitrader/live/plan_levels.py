"""A trade plan's levels on the live exchange broker (:mod:`aitrader.engine.exits` moves them).

At each close the plan sets the position's stop and take-profit (:meth:`PlanLevels.protect`):
a moved stop cancels the native stop order, which the broker places again at the new price when
the bar closes; a take-profit with a share (TP1) sells that share of the position at market
once a closed bar reaches it, and the rest keeps its stop until the plan sets TP2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from aitrader.engine.types import Position


class PlanLevels:
    """The ExchangeBroker's part of trade plans (a mixin over its brackets and stops)."""

    positions: dict[str, Position]
    brackets: dict[str, tuple[float, float]]
    shares: dict[str, float]  # of the position a take-profit sells (absent: all of it)
    stops: Mapping[str, str]
    cancel_stop: Callable[[str, str], bool]  # the broker's: cancels a native stop order

    def protect(self, symbol: str, stop: float, take_profit: float, share: float = 1.0) -> None:
        """A held position's stop and take-profit prices (NaN: none) and the share of it the
        take-profit sells, set at a bar's close; nothing for a flat position."""
        if self.positions[symbol].qty <= 0:
            return
        before = self.brackets[symbol][0]
        self.brackets[symbol] = (float(stop), float(take_profit))
        self._share(symbol, share)
        moved = not (before == stop or (math.isnan(before) and math.isnan(stop)))
        if moved and symbol in self.stops:
            self.cancel_stop(symbol, "the trade plan moved the stop")

    def _share(self, symbol: str, share: float | None) -> None:
        if share is not None and share < 1.0:
            self.shares[symbol] = float(share)
        else:
            self.shares.pop(symbol, None)

    def _exit_qty(self, symbol: str, held: float, reason: str) -> float:
        """The signed quantity a bracket exit sells: all of it, or a take-profit's share (then
        the rest has no take-profit until the plan sets one)."""
        share = self.shares.pop(symbol, 1.0) if reason == "take_profit" else 1.0
        if share >= 1.0:
            return -held
        self.brackets[symbol] = (self.brackets[symbol][0], math.nan)
        return -held * share
