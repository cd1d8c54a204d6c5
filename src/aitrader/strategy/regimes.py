"""What the regime and volatility agents tell the strategy contract, per bar and causally.

* :class:`RegimeSource` labels bars (``trend|range`` × ``low|normal|high``) for the per-regime
  signal overrides and the mode-per-tier mapping. ``modes.regime.source: rules`` takes the
  volatility tier from the percentile rule (:func:`aitrader.strategy.modes.regime_labels`);
  ``hmm`` takes it from the HMM regime agent's **forward-filtered** state probabilities (never
  Viterbi): the attached bundle's agent when it has one (kind ``hmm``, or a meta-agent with an
  ``hmm`` agent), else an :class:`~aitrader.models.hmm.HMMRegimeModel` fitted here by the same
  code on the last ``hmm_train_bars`` bars before the first decision. The tier is the likeliest
  of P(low) = P(state 0), P(high) = P(last state) and P(normal) = the states between (states are
  ordered by volatility, so the tiers stay stable across refits).
* :func:`garch_outputs` gives the GARCH volatility agent's ``garch_sigma`` / ``garch_range`` /
  ``vol_high_p`` per bar (the stop of ``plans.stop_method: garch``, vol-target sizing's σ).

Both agents read only the ``lags`` window of each bar (its last ``window`` bars), computed here
from the candles with the feature's own code: the value at bar ``t`` uses bars ``≤ t`` only and
is the same over a whole series and over a trailing window ending at ``t`` (the per-bar path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from aitrader.errors import ConfigError, DataError
from aitrader.features.bars import Bars
from aitrader.features.featureset import compute_spec
from aitrader.features.spec import FeatureSpec
from aitrader.models.garch import OUTPUTS, GarchAgentModel, GarchParams
from aitrader.models.hmm import HMMParams, HMMRegimeModel
from aitrader.strategy.config import VOL_TIERS, RegimeConfig
from aitrader.strategy.modes import regime_labels

T = TypeVar("T")
MIN_HMM_ROWS = 200
"""Fewest filtered rows (bars after the HMM window) an HMM is fitted on here."""


def find_agent(bundle: Any, kind: type[T]) -> T | None:
    """The fitted agent of class ``kind`` in a model bundle (or a fitted prediction chain):
    its model itself, or one of its meta-agent's agents (the first such); None without a
    bundle or such an agent."""
    if bundle is None:
        return None
    model = getattr(bundle, "predictor", bundle).model
    if isinstance(model, kind):
        return model
    for agent in getattr(model, "agents_", ()):
        if isinstance(agent.model, kind):
            found: T = agent.model
            return found
    return None


def agent_window(model: HMMRegimeModel | GarchAgentModel) -> int:
    """Bars of the ``lags`` window the agent filters."""
    params = model.params
    if params is None:
        params = HMMParams() if isinstance(model, HMMRegimeModel) else GarchParams()
    return int(params.window)


def lag_rows(candles: pd.DataFrame, window: int) -> pd.DataFrame:
    """The ``lags`` feature (``window`` bars, the feature's own code) at every bar of
    ``candles`` whose window is complete (the earlier bars are left out). The candles were
    checked where they were loaded; nothing is validated again (the per-bar path calls this)."""
    spec = FeatureSpec(name="lags", params={"lags": window})
    o, h, lo, c, v = (
        candles[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
    )
    bars = Bars(o, h, lo, c, v, candles.index.asi8)
    computed = compute_spec(bars, spec)
    values = np.column_stack(computed.values)
    keep = np.isfinite(values).all(axis=1)
    return pd.DataFrame(values[keep], index=candles.index[keep], columns=computed.columns)


def vol_tiers(proba: np.ndarray) -> np.ndarray:
    """``low`` / ``normal`` / ``high`` per row of state probabilities (state 0 the calmest):
    the likeliest of P(state 0), P(the states between) and P(the last state)."""
    grouped = np.column_stack(
        [proba[:, 0], proba[:, 1:-1].sum(axis=1), proba[:, -1]],
    )
    return np.asarray(VOL_TIERS, dtype=object)[np.argmax(grouped, axis=1)]


def hmm_tiers(model: HMMRegimeModel, candles: pd.DataFrame) -> np.ndarray:
    """The HMM volatility tier at every bar (forward-filtered up to that bar), ``""`` while
    the agent's window is not complete."""
    out = np.full(len(candles), "", dtype=object)
    if len(candles) <= agent_window(model):
        return out
    rows = lag_rows(candles, agent_window(model))
    positions = candles.index.get_indexer(rows.index)
    out[positions] = vol_tiers(model.state_proba(rows))
    return out


def garch_outputs(model: GarchAgentModel, candles: pd.DataFrame) -> pd.DataFrame:
    """The GARCH agent's ``garch_sigma``, ``garch_range``, ``vol_high_p`` at every bar of
    ``candles`` (NaN while its window is not complete)."""
    if len(candles) <= agent_window(model):
        return pd.DataFrame(np.nan, index=candles.index, columns=list(OUTPUTS))
    rows = lag_rows(candles, agent_window(model))
    table = model.outputs(rows)
    table.index = rows.index
    return table.reindex(candles.index)


def fit_hmm(training: pd.DataFrame, config: RegimeConfig, seed: int = 42) -> HMMRegimeModel:
    """An HMM regime agent fitted on ``training``'s last ``hmm_train_bars`` bars (the labels it
    learns P(class | state) from are the bars' own return signs: nothing after a bar)."""
    from aitrader.models import kinds

    need = config.hmm_window + MIN_HMM_ROWS
    bars = training.iloc[-config.hmm_train_bars :]
    if len(bars) < need:
        raise ConfigError(
            f"modes.regime.source is 'hmm' but only {len(bars)} bars precede the first "
            f"decision to fit the HMM on (it needs {need}: modes.regime.hmm_window "
            f"{config.hmm_window} + {MIN_HMM_ROWS}); give more history, attach a bundle with an "
            "hmm agent, or set modes.regime.source: rules"
        )
    params = HMMParams(states=config.hmm_states, window=config.hmm_window)
    model = kinds.get("hmm").build(params, seed, 1)
    assert isinstance(model, HMMRegimeModel)
    rows = lag_rows(bars, config.hmm_window)
    up = (rows[f"lag_ret_{0}"].to_numpy() > 0).astype(np.int64)
    try:
        return model.fit(rows, up)
    except DataError as exc:
        raise ConfigError(f"modes.regime.source 'hmm': fitting the HMM failed: {exc}") from None


@dataclass(frozen=True)
class RegimeSource:
    """Labels bars by ``config`` (``hmm``: with the volatility tier of ``hmm``, or the tiers
    already computed per bar time in ``tiers``: a walk-forward's fold agents)."""

    config: RegimeConfig
    hmm: HMMRegimeModel | None = None
    tiers: pd.Series | None = None

    @property
    def bars(self) -> int:
        """Bars of history a label needs (the per-bar path keeps at least this many + 1)."""
        c = self.config
        rules = max(c.trend_window, c.vol_window + c.vol_rank_window)
        return rules if self.hmm is None else max(c.trend_window, agent_window(self.hmm) + 1)

    def labels(self, candles: pd.DataFrame) -> pd.Series:
        """The regime of every bar of ``candles`` (``unknown`` while warming up)."""
        tiers = None
        if self.hmm is not None:
            tiers = hmm_tiers(self.hmm, candles)
        elif self.tiers is not None:
            tiers = self.tiers.reindex(candles.index).fillna("").to_numpy(dtype=object)
        return regime_labels(candles, self.config, tiers)

    def last(self, candles: pd.DataFrame) -> str:
        """The regime of the last bar, from the trailing bars it needs only."""
        return str(self.labels(candles.iloc[-(self.bars + 1) :]).iloc[-1])


def regime_source(
    config: RegimeConfig, bundle: Any = None, training: pd.DataFrame | None = None
) -> RegimeSource:
    """The configured labelling: rules, or the HMM tier from ``bundle``'s hmm agent (a bundle
    or a fitted prediction chain), else from an HMM fitted on ``training`` (the bars before the
    first decision; ConfigError naming ``modes.regime.source`` when there are too few)."""
    if config.source == "rules":
        return RegimeSource(config)
    model = find_agent(bundle, HMMRegimeModel)
    if model is None:
        model = fit_hmm(training if training is not None else pd.DataFrame(), config)
    return RegimeSource(config, model)


def agent_frame(chain: Any, candles: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """What a fitted chain's agents say at the bars ``index`` (from ``candles``, which end at
    its last): ``tier`` (the HMM agent's volatility tier) and ``garch_range`` / ``garch_sigma``
    (the GARCH agent's), a column only for an agent the chain has."""
    out = pd.DataFrame(index=index)
    hmm, garch = find_agent(chain, HMMRegimeModel), find_agent(chain, GarchAgentModel)
    agents = [a for a in (hmm, garch) if a is not None]
    if len(index) == 0 or not agents:
        return out
    # each bar reads its own window only: the bars from a window (+ its first return) before
    # the first asked bar suffice, not the whole history
    first = int(candles.index.searchsorted(index[0])) - max(map(agent_window, agents)) - 1
    candles = candles.iloc[max(first, 0) : int(candles.index.searchsorted(index[-1], "right"))]
    if hmm is not None:
        tiers = pd.Series(hmm_tiers(hmm, candles), index=candles.index, dtype=object)
        out["tier"] = tiers.reindex(index)
    if garch is not None:
        table = garch_outputs(garch, candles).reindex(index)
        out["garch_range"], out["garch_sigma"] = table["garch_range"], table["garch_sigma"]
    return out
