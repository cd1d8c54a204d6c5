"""The model-bundle strategy: a trained bundle's calibrated probabilities → signal → ATR stop.

Bar by bar (``on_bar``): the feature row of the last bar → the bundle's calibrated
probabilities → :func:`~aitrader.strategy.signals.signal_targets` (thresholds, bands, EV gate on the
rolling win / loss, the bundle's tuned thresholds) → an ATR stop. Every feature except GARCH is
computed on the trailing window the feature set's warm-up allows (features are causal, and the
recursive ones — EMA, Wilder ATR/ADX — have forgotten their seed after that many bars, so the
trailing value equals the batch one up to rounding). The GARCH forecast depends on where its
refits fall and on the whole history since the last one, so each GARCH column is a
:class:`~aitrader.features.volatility.GarchFilter` kept between bars: O(1) per bar, refits on
the batch schedule anchored on the first history bar, bit-identical values. A sequence model
(``context_rows`` > 0) reads a window of finite feature rows: it is seeded from the history in
one batch and takes each bar's row, also on bars only observed.

The bundle's agents (:mod:`aitrader.strategy.regimes`): with ``modes.regime.source: hmm`` the
regime labels take the HMM agent's forward-filtered volatility tier (the bundle's, else an HMM
fitted on the history before the first decision); with ``plans.stop_method: garch`` the stop is
``stop_garch`` × the GARCH agent's predicted range; a GARCH agent's σ forecast goes with every
target (``Target.vol``, for vol-target sizing). Each reads the trailing bars it needs only.

``vectorized`` is :func:`~aitrader.strategy.bundle.bundle_targets` over the whole series, the batch
reference the per-bar path equals (``aitrader strategy check``). Each symbol's fraction is
divided by the number of symbols (1/N of equity at full conviction).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import ConfigError, DataError
from aitrader.features.bars import Bars
from aitrader.features.featureset import build_features, column_names, compute_spec
from aitrader.features.registry import resolve
from aitrader.features.spec import FeatureSpec
from aitrader.features.volatility import GarchFilter
from aitrader.models.garch import GarchAgentModel
from aitrader.strategy.base import Context, Decision, Environment, Param, Strategy, Target
from aitrader.strategy.base import TargetFrame as Frame
from aitrader.strategy.bundle import bundle_signal_config, bundle_specs, bundle_targets
from aitrader.strategy.edge import (
    STATS_WINDOW,
    model_stops,
    plan_stop,
    require_stop_agent,
    win_loss_at,
)
from aitrader.strategy.regimes import (
    RegimeSource,
    agent_window,
    find_agent,
    garch_outputs,
    regime_source,
)
from aitrader.strategy.signals import SignalInputs, direction_probabilities, signal_targets

log = logging.getLogger(__name__)

STAGES = ("features", "model", "policy")
SETTLED_WINDOW = 2000
"""Default floor of the trailing feature window: recursive features (EMA, MACD, Wilder RSI /
ATR / ADX, also on the 4× timeframe) have forgotten their seed to within ~1e-9 relative."""
MODEL_HISTORY = SETTLED_WINDOW + 1000
"""Bars of history a run loads before the first decision (the trailing feature window, the
rolling win/loss and regime statistics, and a GARCH fit)."""


@dataclass(frozen=True)
class _Garch:
    """A GARCH spec served from an incremental filter: its column and the filter's settings."""

    column: str
    window: int
    refit_every: int


def _split_specs(specs: Sequence[FeatureSpec]) -> tuple[list[FeatureSpec], list[_Garch]]:
    """Specs computed on the trailing window, and the base-timeframe GARCH specs."""
    rest, garch = [], []
    for spec in specs:
        if spec.name == "garch" and spec.timeframe is None:
            _, p = resolve(spec.name, spec.params)
            column = column_names(spec)[0]
            garch.append(_Garch(column, p.integer("window"), p.integer("refit_every")))
        else:
            if spec.name == "garch":
                log.warning("%s: higher-timeframe GARCH is recomputed per bar", spec.label())
            rest.append(spec)
    return rest, garch


def _tail(bars: Bars, n: int) -> Bars:
    lo = max(0, len(bars) - n)
    return Bars(
        bars.open[lo:], bars.high[lo:], bars.low[lo:], bars.close[lo:], bars.volume[lo:],
        bars.ts[lo:],
    )  # fmt: skip


def _frame(bars: Bars) -> pd.DataFrame:
    index = pd.DatetimeIndex(bars.ts.astype("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    fields = ("open", "high", "low", "close", "volume")
    return pd.DataFrame({k: getattr(bars, k) for k in fields}, index=index)


def _json_row(row: pd.DataFrame) -> dict[str, float | None]:
    """A one-row feature frame as JSON-safe values (NaN/inf as None)."""
    return {
        c: (float(v) if np.isfinite(v) else None)
        for c, v in zip(row.columns, row.iloc[0], strict=True)
    }


class ModelBundleStrategy(Strategy):
    """A trained model bundle (``aitrader train``): calibrated probabilities → thresholds /
    bands / EV gate → position with an ATR stop. Needs ``--model BUNDLE``."""

    name = "model"
    needs_model = True
    warmup = MODEL_HISTORY
    mode = Param(None, type=str, help="trading mode whose thresholds apply (None: the base)")
    feature_window = Param(
        None, low=10, high=1_000_000, type=int, help="trailing feature window (≥ warm-up)"
    )

    def setup(self, env: Environment) -> None:
        if env.bundle is None:
            raise ConfigError("strategy model trades a model bundle: give --model BUNDLE")
        self.bundle, self.settings, self.timeframe = env.bundle, env.settings, env.timeframe
        self.symbols = tuple(env.symbols)
        self.columns = list(self.bundle.predictor.feature_names)
        self.rest, self.garch = _split_specs(bundle_specs(self.bundle))
        self.base = timeframe_seconds(env.timeframe)
        mode = self.params["mode"]
        self.configs = {
            s: bundle_signal_config(self.bundle, env.settings, s, env.timeframe, mode)
            for s in self.symbols
        }
        self.stop = plan_stop(env.settings.plans)
        missing = [s for s in self.symbols if s not in env.history]
        if missing:
            raise DataError(f"model strategy: no history for {', '.join(missing)}")
        self._agents(env)
        self._window(env.history[self.symbols[0]])
        self._filters = {s: self._seed(s, env.history[s]) for s in self.symbols}
        self.context = self.bundle.predictor.model.context_rows
        self._rows = {s: self._seed_rows(env.history[s]) for s in self.symbols}
        self._current = dict.fromkeys(self.symbols, False)
        self.timings = dict.fromkeys(STAGES, 0)

    def _agents(self, env: Environment) -> None:
        """The bundle's GARCH agent (stops, σ) and per symbol the regime source (only when the
        signal settings have regime overrides: an HMM fallback is fitted on the history)."""
        self.vol_agent = find_agent(self.bundle, GarchAgentModel)
        require_stop_agent(env.settings.plans, self.vol_agent)
        self.regimes: dict[str, RegimeSource] = {}
        if any(c.regime_overrides for c in self.configs.values()):
            regime = env.settings.modes.regime
            self.regimes = {
                s: regime_source(regime, self.bundle, env.history[s]) for s in self.symbols
            }

    def _seed_rows(self, history: pd.DataFrame) -> deque[np.ndarray]:
        """A sequence model's window: the last finite feature rows of the history (computed in
        one batch, as :func:`~aitrader.strategy.bundle.bundle_targets` does), then one row per
        bar."""
        rows: deque[np.ndarray] = deque(maxlen=self.context + 1)
        if self.context:
            frame = build_features(history, bundle_specs(self.bundle), timeframe=self.timeframe)
            values = frame.frame[self.columns].to_numpy(np.float64)
            rows.extend(values[np.isfinite(values).all(axis=1)][-self.context :])
        return rows

    def _window(self, history: pd.DataFrame) -> None:
        """The trailing feature window and the bars kept (``window``) for the policy."""
        self.warmup_bars = self._warmup(history)
        given = self.params["feature_window"]
        self.features_window = given or max(self.warmup_bars, SETTLED_WINDOW)
        if self.features_window < self.warmup_bars:
            raise ConfigError(
                f"model strategy: feature_window {self.features_window} < feature warm-up "
                f"{self.warmup_bars}"
            )
        regime = self.settings.modes.regime
        regime_bars = max(regime.trend_window, regime.vol_window + regime.vol_rank_window)
        regime_bars = max([regime_bars, *(r.bars for r in self.regimes.values())])
        agent = 0 if self.vol_agent is None else agent_window(self.vol_agent) + 1
        self.window = max(self.features_window, STATS_WINDOW + 1, regime_bars + 1, agent + 1)

    def _warmup(self, history: pd.DataFrame) -> int:
        """Bars the trailing-window features need for a complete row (warm-up + the bar)."""
        if not self.rest:
            return self.stop.period + 1
        try:
            matrix = build_features(history, self.rest, timeframe=self.timeframe)
        except DataError as exc:
            raise DataError(
                f"model strategy: history too short for the feature warm-up ({exc})"
            ) from None
        return matrix.dropped_warmup + 1

    def _seed(self, symbol: str, history: pd.DataFrame) -> list[GarchFilter]:
        if len(history) < self.warmup_bars:
            raise DataError(
                f"model strategy: {symbol} history has {len(history)} bars; the feature warm-up "
                f"needs at least {self.warmup_bars}"
            )
        close = history["close"].to_numpy(np.float64)
        return [GarchFilter.from_closes(close, g.window, g.refit_every) for g in self.garch]

    def observe(self, ctx: Context) -> None:
        for s in self.symbols:
            for f in self._filters[s]:
                f.update(float(ctx.bars[s].close))
            if self.context:  # a sequence model's window takes every bar's finite row
                row = self.features(ctx.history(s), s).to_numpy()[0]
                self._current[s] = bool(np.isfinite(row).all())
                if self._current[s]:
                    self._rows[s].append(row)

    def on_bar(self, ctx: Context) -> Decision:
        self.timings = dict.fromkeys(STAGES, 0)
        t0 = time.perf_counter_ns()
        self.observe(ctx)
        self.timings["features"] += time.perf_counter_ns() - t0
        out = {}
        for s in self.symbols:
            fraction, (stop_loss, vol), info = self._decide(ctx, s)
            share = fraction / len(self.symbols)
            out[s] = Target(share, stop_loss=stop_loss, vol=vol, info=info)
        return out

    def features(self, bars: Bars, symbol: str) -> pd.DataFrame:
        """The feature row of the last of ``bars``, in the model's column order."""
        bars = _tail(bars, self.features_window)
        values: dict[str, float] = {}
        for spec in self.rest:
            computed = compute_spec(bars, spec, self.base)
            for name, column in zip(computed.columns, computed.values, strict=True):
                values[name] = float(column[-1])
        for g, f in zip(self.garch, self._filters[symbol], strict=True):
            values[g.column] = f.value
        row = np.array([[values[c] for c in self.columns]], dtype=np.float64)
        return pd.DataFrame(row, columns=self.columns)

    def inputs(self, bars: Bars, symbol: str) -> pd.DataFrame | None:
        """The model's input at the last bar: its feature row, or for a sequence model the
        window of finite rows ending at it (``context_rows`` before it); None when the last
        bar's row is not finite (no prediction)."""
        if self.context:
            if not self._current[symbol]:
                return None
            return pd.DataFrame(np.array(self._rows[symbol]), columns=self.columns)
        row = self.features(bars, symbol)
        return row if np.isfinite(row.to_numpy()).all() else None

    def _decide(
        self, ctx: Context, symbol: str
    ) -> tuple[float, tuple[float, float], dict[str, Any]]:
        """``(signed fraction of the top band, (stop-loss fraction, σ forecast), explanation)``
        at the last bar; the explanation holds the calibrated class probabilities (for a meta-agent
        also each agent's view and weight) and the feature row (what drift checks compare with
        the bundle's training reference)."""
        t0 = time.perf_counter_ns()
        bars = ctx.history(symbol)
        rows = self.inputs(bars, symbol)
        t1 = time.perf_counter_ns()
        p_up, p_down = np.array([np.nan]), None
        info: dict[str, Any] = {"bundle": self.bundle.info.created}
        if rows is not None:
            info["features"] = _json_row(rows.iloc[-1:])
            proba, why = self.bundle.predictor.predict_explained(rows)
            proba = proba[-1:]
            p_up, p_down = direction_probabilities(proba, self.bundle.predictor.classes)
            info |= why
        t2 = time.perf_counter_ns()
        fraction, stop = self._policy(bars, symbol, p_up, p_down)
        t3 = time.perf_counter_ns()
        for stage, ns in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.timings[stage] += ns
        return fraction, stop, info

    def _policy(
        self, bars: Bars, symbol: str, p_up: np.ndarray, p_down: np.ndarray | None
    ) -> tuple[float, tuple[float, float]]:
        """The target fraction and ``(stop-loss fraction, σ forecast)`` at the last bar."""
        config = self.configs[symbol]
        win, loss = win_loss_at(bars.close, self.settings.costs.round_trip)
        frame = _frame(_tail(bars, self._policy_bars() or len(bars)))
        regimes = None
        if config.regime_overrides:  # labels only change the parameters through overrides
            regimes = np.array([self.regimes[symbol].last(frame)], dtype=object)
        inputs = SignalInputs(p_up, win, loss, p_down, regimes)
        _, target = signal_targets(inputs, config, self.settings.costs, symbol, self.timeframe)
        vol, table = math.nan, None
        if self.vol_agent is not None:  # run once: σ here, the range for a garch stop
            table = garch_outputs(self.vol_agent, frame.iloc[self._garch_start() :])
            vol = float(table["garch_sigma"].iloc[-1])
        plans = self.settings.plans
        start = self._garch_start() if plans.stop_method == "garch" else 0
        stop = model_stops(frame.iloc[start:], plans, self.vol_agent, table if start else None)
        return float(target[0]), (float(stop[-1]), vol)

    def _policy_bars(self) -> int:
        """The trailing bars the policy reads: what the regime labels and the GARCH agent need,
        all the kept bars for the ATR stop (its Wilder smoothing has a seed)."""
        if self.settings.plans.stop_method != "garch" or self.vol_agent is None:
            return self.window or 0
        needs = [agent_window(self.vol_agent) + 2, *(r.bars + 1 for r in self.regimes.values())]
        return max(needs)

    def _garch_start(self) -> int:
        """Where the bars the GARCH agent reads for the last bar start (its window); the ATR
        stop reads all the kept bars (its Wilder smoothing has a seed)."""
        assert self.vol_agent is not None
        return -(agent_window(self.vol_agent) + 2)

    def vectorized(self, data: Mapping[str, pd.DataFrame], start: int = 0) -> Frame:
        fractions, stops, vols = {}, {}, {}
        for s, candles in data.items():
            batch = bundle_targets(
                s, candles, self.bundle, self.settings, self.timeframe, self.params["mode"],
                self.regimes.get(s),
            )  # fmt: skip
            fractions[s] = batch.fraction / len(data)
            stops[s], vols[s] = batch.stop_loss, batch.vol
        return Frame(pd.DataFrame(fractions), stop_loss=pd.DataFrame(stops), vol=pd.DataFrame(vols))

    def idle_reason(self) -> str | None:
        """The bundle's tuned decision when it trades no side on any traded symbol."""
        tuned = self.bundle.info.thresholds()
        if tuned is None or tuned.reached:
            return None
        if not all(tuned.applies_to(s, self.timeframe) for s in self.symbols):
            return None
        return f"the model bundle's decision trades neither side: {tuned.describe()}"

    def describe(self) -> dict[str, Any]:
        info = getattr(getattr(self, "bundle", None), "info", None)
        created = None if info is None else info.created
        return {**super().describe(), "bundle": created}
