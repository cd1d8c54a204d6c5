"""A walk-forward fold's agents in its evaluation: the regimes, stop and σ each out-of-sample bar
is traded with come from the model fitted on that fold's training window (its HMM and GARCH
agents, :func:`aitrader.strategy.regimes.agent_frame`), as a bundle's agents do in a backtest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from aitrader.errors import ConfigError
from aitrader.strategy.edge import NO_GARCH_AGENT, DecisionContext
from aitrader.strategy.regimes import RegimeSource
from aitrader.validation.walkforward import FoldOutput


def fold_regimes(ctx: DecisionContext, agents: pd.DataFrame | None) -> DecisionContext:
    """``ctx`` whose regime labels take the fold agents' HMM tier (``source: hmm`` and an HMM
    agent; otherwise the regime source of ``ctx``, an HMM fitted on the earlier bars)."""
    if ctx.regime.source != "hmm" or agents is None or "tier" not in agents:
        return ctx
    return replace(ctx, regimes=RegimeSource(ctx.regime, tiers=agents["tier"]))


def stitched_agents(
    outputs: Sequence[FoldOutput], fold: np.ndarray, index: pd.Index
) -> pd.DataFrame:
    """The agents' columns at the stitched out-of-sample bars ``index`` (``fold``: each bar's
    fold number), every bar from its own fold's agents."""
    parts = []
    for output in outputs:
        if output.agents is not None and len(output.agents.columns):
            mine = index[fold == output.fold.number]
            parts.append(output.agents.reindex(mine))
    if not parts:
        return pd.DataFrame(index=index)
    return pd.concat(parts).reindex(index)


def fold_protection(
    ctx: DecisionContext, agents: pd.DataFrame
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per bar: the stop-loss fraction (``garch_stop`` × the fold GARCH agent's predicted
    range; None: the ATR stop of ``ctx``) and the σ forecast for vol-target sizing (None: no
    GARCH agent)."""
    vol = agents["garch_sigma"].to_numpy() if "garch_sigma" in agents else None
    if ctx.garch_stop is None:
        return None, vol
    if "garch_range" not in agents:
        raise ConfigError(NO_GARCH_AGENT)
    return ctx.garch_stop * agents["garch_range"].to_numpy(), vol
