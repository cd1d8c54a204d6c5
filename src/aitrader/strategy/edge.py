"""The model strategy's market inputs, and its decision tuned on a calibration window only.

A model gives calibrated class probabilities; what it trades is their expected value net of
costs (:func:`aitrader.strategy.signals.generate`): ``P(up)·avg_win − P(down)·avg_loss`` before
the round trip, with ``avg_win`` / ``avg_loss`` the causal rolling mean of the bar returns beyond
the cost band (:func:`win_loss`, the same band as the direction labels).

How much of that edge must clear the round trip is a property of the model and the market, so
:func:`tune_decision` chooses it on the calibration slice (rows after the model's training rows
and before anything it is scored or traded on): for each candidate gate (the EV margin passing
the top ``coverage`` share of calibration bars) and each allowed side set, the targets run
through the engine's compiled kernel with costs and the ATR stop, and the candidate with the best
risk-adjusted net P&L wins when its t-statistic reaches :data:`MIN_T` on at least
``signals.min_trades`` trades. When none does the model stays flat and the notes say why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import AtrStop
from aitrader.errors import ConfigError
from aitrader.features.indicators import atr
from aitrader.models.garch import GarchAgentModel
from aitrader.risk.config import RiskConfig
from aitrader.strategy.config import PlanConfig, RegimeConfig, SignalConfig
from aitrader.strategy.regimes import RegimeSource, garch_outputs, regime_source
from aitrader.strategy.signals import (
    SignalInputs,
    TunedThresholds,
    gross_edge,
    resolve,
    round_trip_cost,
    signal_targets,
    with_tuned,
)

STATS_WINDOW = 2000  # bars of realised returns behind the EV gate's average win / loss
COVERAGES: tuple[float, ...] = (0.5, 0.3, 0.2, 0.12, 0.06, 0.03)
"""Candidate gates: the EV margin that the top ``coverage`` share of calibration bars clear."""
MIN_T = 1.0
"""Least t-statistic of the per-bar net returns a tuned decision needs on its calibration slice."""
SIDE_SETS: tuple[tuple[bool, bool], ...] = ((True, True), (True, False), (False, True))


def win_loss(close: pd.Series, band: float) -> tuple[np.ndarray, np.ndarray]:
    """Causal average win (mean bar return above ``band``) and average loss (mean shortfall
    below ``-band``) over the last ``STATS_WINDOW`` realised bar returns."""
    r = close.pct_change()
    wins = r.where(r > band)
    losses = (-r).where(r < -band)
    rolling = {"window": STATS_WINDOW, "min_periods": 200}
    return (
        wins.rolling(**rolling).mean().to_numpy(),
        losses.rolling(**rolling).mean().to_numpy(),
    )


def win_loss_at(close: np.ndarray, band: float) -> tuple[float, float]:
    """The EV gate's average win / loss at the last of ``close`` (the batch rolling statistic on
    the trailing ``STATS_WINDOW + 1`` closes; equal to the batch value up to rounding)."""
    tail = pd.Series(np.asarray(close, dtype=np.float64)[-(STATS_WINDOW + 1) :])
    win, loss = win_loss(tail, band)
    return float(win[-1]), float(loss[-1])


def atr_stop_loss(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, stop: AtrStop
) -> np.ndarray:
    """Stop distances as fractions of the close (how the managed backtest applies an AtrStop)."""
    return np.asarray(stop.multiple * atr(high, low, close, stop.period) / close)


def plan_stop(plans: PlanConfig) -> AtrStop:
    """The ATR stop (``plans.stop_atr`` × ATR): a model position's unless ``plans.stop_method``
    is ``garch`` (:func:`model_stops`), and the one its decision is tuned with."""
    return AtrStop(period=plans.atr_period, multiple=plans.stop_atr)


def model_stops(
    candles: pd.DataFrame,
    plans: PlanConfig,
    garch: GarchAgentModel | None,
    table: pd.DataFrame | None = None,
) -> np.ndarray:
    """The model strategy's stop distance per bar, as a fraction of the close: with
    ``plans.stop_method: garch`` ``stop_garch`` × the GARCH agent's predicted next high-low
    range (``garch_range``, known at the bar's close), else ``stop_atr`` × ATR / close.
    ``table``: the agent's :func:`garch_outputs` on ``candles`` when already computed."""
    if plans.stop_method != "garch":
        return stop_fractions(candles, plan_stop(plans))
    agent = require_stop_agent(plans, garch)
    assert agent is not None
    outputs = garch_outputs(agent, candles) if table is None else table
    return np.asarray(plans.stop_garch * outputs["garch_range"].to_numpy())


NO_GARCH_AGENT = (
    "plans.stop_method is 'garch' but the model has no GARCH volatility agent (train kind garch, "
    "or a meta-agent with a garch agent), or set plans.stop_method: atr"
)


def garch_stop_multiple(plans: PlanConfig) -> float | None:
    """``plans.stop_garch`` when ``plans.stop_method`` is ``garch``, else None."""
    return plans.stop_garch if plans.stop_method == "garch" else None


def require_stop_agent(plans: PlanConfig, garch: GarchAgentModel | None) -> GarchAgentModel | None:
    """``garch``; ConfigError naming ``plans.stop_method`` when it is ``garch`` and there is
    no GARCH volatility agent to place the stop with."""
    if plans.stop_method == "garch" and garch is None:
        raise ConfigError(NO_GARCH_AGENT)
    return garch


@dataclass(frozen=True)
class DecisionContext:
    """What a model strategy trades with: signal settings, costs, stop, risk and the market
    (``symbol``/``timeframe`` select the overrides; ``regime`` labels bars when the signal
    settings have regime overrides, through ``regimes`` when given, else through
    :func:`~aitrader.strategy.regimes.regime_source` with an HMM fitted on the bars before the
    first probability)."""

    signals: SignalConfig = field(default_factory=SignalConfig)
    costs: CostsConfig = field(default_factory=CostsConfig)
    stop: AtrStop = field(default_factory=lambda: plan_stop(PlanConfig()))
    risk: RiskConfig = field(default_factory=RiskConfig)
    symbol: str | None = None
    timeframe: str | None = None
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    calendar: str = "crypto"
    regimes: RegimeSource | None = None
    garch_stop: float | None = None  # plans.stop_garch when plans.stop_method is garch

    @property
    def broker(self) -> BrokerConfig:
        return BrokerConfig.from_costs(self.costs)

    def tuned(self, tuned: TunedThresholds) -> SignalConfig:
        """The signal settings with ``tuned`` as this market's override."""
        return with_tuned(self.signals, self.symbol, self.timeframe, tuned)


def market_inputs(
    candles: pd.DataFrame, p_up: pd.Series, p_down: pd.Series | None, ctx: DecisionContext
) -> SignalInputs:
    """Signal inputs over ``candles.index``: the probabilities where given (NaN elsewhere), the
    causal average win / loss and, when regime overrides exist, the regime labels."""
    up = p_up.reindex(candles.index).to_numpy(np.float64)
    down = None if p_down is None else p_down.reindex(candles.index).to_numpy(np.float64)
    win, loss = win_loss(candles["close"], ctx.costs.round_trip)
    regimes = None
    if ctx.signals.regime_overrides:
        source = ctx.regimes
        if source is None:
            first = int(np.searchsorted(candles.index, p_up.index[0])) if len(p_up) else 0
            source = regime_source(ctx.regime, None, candles.iloc[:first])
        regimes = source.labels(candles).to_numpy()
    return SignalInputs(up, win, loss, down, regimes)


def stop_fractions(candles: pd.DataFrame, stop: AtrStop) -> np.ndarray:
    h, lo, c = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    return atr_stop_loss(h, lo, c, stop)


def gates(inputs: SignalInputs, window: np.ndarray, ctx: DecisionContext) -> dict[float, float]:
    """EV margin per candidate coverage: the ``1 − coverage`` quantile of |edge| on the window's
    bars, minus the round trip (so the top ``coverage`` share of bars clear it)."""
    edge = gross_edge(
        inputs.p_up,
        1.0 - np.asarray(inputs.p_up) if inputs.p_down is None else inputs.p_down,
        inputs.avg_win,
        inputs.avg_loss,
    )
    size = np.abs(np.asarray(edge)[window])
    size = size[np.isfinite(size)]
    if size.size == 0:
        return {}
    cost = round_trip_cost(ctx.costs, ctx.signals.entry_liquidity, ctx.signals.exit_liquidity)
    return {c: float(np.clip(np.quantile(size, 1.0 - c) - cost, -1.0, 1.0)) for c in COVERAGES}


@dataclass(frozen=True)
class _Trial:
    tuned: TunedThresholds
    t_stat: float


def _score(
    candles: pd.DataFrame, fraction: np.ndarray, stops: np.ndarray, ctx: DecisionContext
) -> tuple[float, int, float]:
    """Net return, trades and t-statistic of ``fraction`` through the compiled kernel."""
    options = RunOptions(
        stop_loss=stops, timeframe=ctx.timeframe, calendar=ctx.calendar, benchmarks=False
    )
    result = run_backtest(candles, np.nan_to_num(fraction, nan=0.0), ctx.broker, options)
    equity = result.equity.to_numpy()
    r = np.diff(equity) / equity[:-1]
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    t = 0.0 if sd == 0 else float(np.mean(r) / sd * math.sqrt(r.size))
    return float(equity[-1] / equity[0] - 1.0), len(result.trades), t


def _sides(ctx: DecisionContext) -> list[tuple[bool, bool]]:
    base = resolve(ctx.signals, ctx.symbol, ctx.timeframe)
    return [
        (lg, sh)
        for lg, sh in SIDE_SETS
        if (base.allow_long or not lg) and (base.allow_short or not sh)
    ]


def _trials(
    candles: pd.DataFrame, inputs: SignalInputs, window: np.ndarray, ctx: DecisionContext
) -> list[_Trial]:
    sub = candles.loc[window]
    stops = stop_fractions(candles, ctx.stop)[window]
    samples = int(window.sum())
    out = []
    for coverage, min_ev in gates(inputs, window, ctx).items():
        for longs, shorts in _sides(ctx):
            probe = TunedThresholds(
                min_ev=min_ev, allow_long=longs, allow_short=shorts, coverage=coverage,
                net_return=0.0, trades=0, samples=samples,
            )  # fmt: skip
            _, fraction = signal_targets(
                inputs, ctx.tuned(probe), ctx.costs, ctx.symbol, ctx.timeframe
            )
            net, trades, t = _score(sub, fraction[window], stops, ctx)
            share = float(np.mean(np.nan_to_num(fraction[window]) != 0))
            update = {"net_return": net, "trades": trades, "coverage": share}
            out.append(_Trial(probe.model_copy(update=update), t))
    return out


def _notes(best: _Trial | None, trials: list[_Trial], ctx: DecisionContext) -> tuple[str, ...]:
    """Why each side is on or off, and what to change when nothing trades."""
    cost = ctx.costs.round_trip
    if best is None:
        if not trials:
            return ("no calibrated probabilities on the calibration window",)
        enough = [t for t in trials if t.tuned.trades >= ctx.signals.min_trades]
        top = max(enough or trials, key=lambda t: t.t_stat)
        shown = top.tuned
        return (
            f"long and short disabled: the best decision ({shown.coverage:.1%} of bars in the "
            f"market, {shown.trades} trades) made {shown.net_return:+.2%} net of the "
            f"{cost:.2%} round trip (t = {top.t_stat:.2f}, needs ≥ {MIN_T:g} on ≥ "
            f"{ctx.signals.min_trades} trades)",
            "to change: a longer label horizon (labels.horizon) or higher timeframe so moves "
            "outgrow costs, cheaper fills (costs, signals.entry_liquidity=maker), features "
            "with an edge, or a longer calibration slice (validation.calibration_fraction)",
        )
    notes = []
    for side, on in (("long", best.tuned.allow_long), ("short", best.tuned.allow_short)):
        if on:
            continue
        allowed = any((lg if side == "long" else sh) for lg, sh in _sides(ctx))
        notes.append(
            f"{side} disabled: "
            + (
                "the configured signals do not allow it"
                if not allowed
                else "the decisions with it earned less net of costs on the calibration window"
            )
        )
    return tuple(notes)


def tune_decision(
    candles: pd.DataFrame, p_up: pd.Series, p_down: pd.Series | None, ctx: DecisionContext
) -> TunedThresholds:
    """The decision for the calibration rows ``p_up.index`` (``candles`` may start earlier, for
    the rolling statistics, and must end at the last calibration bar): the gate and sides whose
    kernel backtest on the calibration bars has the best t-statistic, or flat (``min_ev``
    None) when none reaches :data:`MIN_T` on ``signals.min_trades`` trades."""
    candles = candles.loc[: p_up.index[-1]]
    inputs = market_inputs(candles, p_up, p_down, ctx)
    window = np.asarray(candles.index >= p_up.index[0])
    trials = _trials(candles, inputs, window, ctx)
    fit = [t for t in trials if t.tuned.trades >= ctx.signals.min_trades and t.t_stat >= MIN_T]
    best = max(fit, key=lambda t: t.t_stat, default=None)
    notes = _notes(best, trials, ctx)
    if best is None:
        return TunedThresholds(
            min_ev=None, allow_long=False, allow_short=False, coverage=0.0, net_return=0.0,
            trades=0, samples=int(window.sum()), notes=notes,
        )  # fmt: skip
    return best.tuned.model_copy(update={"notes": notes})
