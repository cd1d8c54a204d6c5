"""Buy and hold: equal weight in every symbol from the first bar, never changed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from aitrader.strategy.base import Context, Decision, Param, Strategy, Target, TargetFrame


class BuyAndHold(Strategy):
    """Equal weight in every symbol from the first bar's close, held (a benchmark, NOT a model).

    The risk manager still sizes the entry: with a ``stop_loss`` of 25 % and the default 2 %
    risk per trade it buys 8 % of equity; raise ``risk.limits.risk_per_trade`` to hold more.
    """

    name = "buy-and-hold"
    window = 1
    stop_loss = Param(0.25, low=0.01, high=0.99, help="protective stop, fraction of entry")

    def on_bar(self, ctx: Context) -> Decision:
        if ctx.i != 0:
            return None
        weight = 1.0 / len(ctx.symbols)
        return {s: Target(weight, stop_loss=self.stop_loss) for s in ctx.symbols}

    def vectorized(self, data: Mapping[str, pd.DataFrame], start: int = 0) -> TargetFrame:
        symbols = list(data)
        index = data[symbols[0]].index
        fraction = pd.DataFrame(np.nan, index=index, columns=symbols)
        stop = pd.DataFrame(np.nan, index=index, columns=symbols)
        if start < len(index):
            fraction.iloc[start] = 1.0 / len(symbols)
            stop.iloc[start] = self.stop_loss
        return TargetFrame(fraction, stop_loss=stop)
