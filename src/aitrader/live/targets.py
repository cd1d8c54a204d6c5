"""Causal target feeds for the live runtime: each bar's targets from the bars seen so far.

A :class:`~aitrader.engine.managed_policy.TargetFeed` for paper and live runs, where the future
is not there to precompute targets from. Both feeds keep per-symbol state between bars and give,
bar by bar, what the batch code gives for the same bar:

* :class:`SmaCrossTargets` — the SMA crossover of
  :func:`~aitrader.engine.baselines.sma_crossover_targets`, with the same running sums from the
  series origin (the first history bar), hence bit-identical values.
* :class:`ModelTargets` — a trained model bundle through the batch pipeline's decision rule
  (:func:`aitrader.pipeline.bundle_targets` is the batch reference): feature row → calibrated
  probabilities → :func:`~aitrader.pipeline.signal_targets` (thresholds, bands, EV gate on the
  rolling win / loss, the bundle's tuned thresholds) → ATR stop. Every feature except GARCH is
  computed on the trailing window the feature set's warm-up allows (features are causal, and the
  recursive ones — EMA, Wilder ATR/ADX — have forgotten their seed after that many bars, so the
  trailing value equals the batch one up to rounding). The GARCH forecast depends on where its
  refits fall and on the whole history since the last one, so a trailing-window recomputation
  differs from the batch value (up to +124 % on BTC-USD 1h) and costs ~10 ms a bar; instead each
  GARCH column is a :class:`~aitrader.features.volatility.GarchFilter` kept between bars: O(1)
  per bar, refits on the batch schedule anchored on the first history bar, bit-identical values.
  Seed ``history`` with the bars the batch run started from to reproduce its refit schedule.

Each symbol's fraction is divided by the number of symbols (1/N of equity at full conviction, as
:func:`aitrader.pipeline.portfolio_backtest` does). A bar seen twice (same or older open time)
does not advance the state: the feed repeats its last answer for that symbol. Every closed bar
must reach the feed, through :meth:`at` or, when no decision is wanted (trading paused),
through ``observe``; a bar that never arrives is a gap in its history.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.data.timeframes import timeframe_seconds
from aitrader.engine.managed_policy import BarTargets
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError, DataError
from aitrader.features.bars import Bars, bars_from_candles
from aitrader.features.featureset import build_features, column_names, compute_spec
from aitrader.features.registry import resolve
from aitrader.features.spec import FeatureSpec
from aitrader.features.volatility import GarchFilter
from aitrader.models.registry import ModelBundle
from aitrader.pipeline import (
    STATS_WINDOW,
    atr_stop_loss,
    bundle_signal_config,
    bundle_specs,
    pipeline_stop,
    signal_targets,
    win_loss_at,
)
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.modes import regime_labels
from aitrader.strategy.signals import SignalInputs, direction_probabilities

log = logging.getLogger(__name__)

History = Mapping[str, pd.DataFrame]
STAGES = ("features", "model", "policy")
SETTLED_WINDOW = 2000
"""Default floor of the trailing feature window: recursive features (EMA, MACD, Wilder RSI /
ATR / ADX, also on the 4× timeframe) have forgotten their seed to within ~1e-9 relative."""


def _nan_row(n: int) -> np.ndarray:
    return np.full(n, np.nan)


class _Seen:
    """Last bar open time per symbol: a repeated or older bar does not advance the state."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.last: dict[str, pd.Timestamp | None] = dict.fromkeys(symbols)

    def is_new(self, bar: Bar) -> bool:
        last = self.last[bar.symbol]
        if last is not None and bar.time <= last:
            return False
        self.last[bar.symbol] = bar.time
        return True


class SmaCrossTargets:
    """SMA(fast)/SMA(slow) crossover targets, one bar at a time (bit-identical to
    :func:`~aitrader.engine.baselines.sma_crossover_targets` over the history plus the bars
    since); constant ``stop_loss`` / ``take_profit`` brackets (fractions) when given."""

    def __init__(
        self,
        symbols: Sequence[str],
        fast: int,
        slow: int,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        history: History | None = None,
        short: bool = False,
    ) -> None:
        if not 0 < fast < slow:
            raise ConfigError(f"SMA crossover needs 0 < fast < slow, got fast={fast}, slow={slow}")
        self.symbols = tuple(symbols)
        self.fast, self.slow, self.low = fast, slow, -1.0 if short else 0.0
        n = len(self.symbols)
        self._ring = np.zeros((n, slow))  # the last ``slow`` closes per symbol
        self._sums = np.zeros((n, 2))  # running (fast, slow) sums from the origin
        self._count = np.zeros(n, dtype=np.int64)
        self._fraction = _nan_row(n)
        self._stop_loss = np.full(n, math.nan if stop_loss is None else stop_loss)
        self._take_profit = np.full(n, math.nan if take_profit is None else take_profit)
        self._seen = _Seen(self.symbols)
        for j, s in enumerate(self.symbols):
            frame = (history or {}).get(s)
            if frame is not None and len(frame):
                for close in frame["close"].to_numpy(np.float64):
                    self._push(j, float(close))
                self._seen.last[s] = frame.index[-1]

    def _push(self, j: int, close: float) -> None:
        """The batch kernel's step ``i`` (same operations in the same order)."""
        i, fast, slow = int(self._count[j]), self.fast, self.slow
        ring = self._ring[j]
        quick = float(self._sums[j, 0]) + close
        lazy = float(self._sums[j, 1]) + close
        if i >= fast:
            quick -= float(ring[(i - fast) % slow])
        if i >= slow:
            lazy -= float(ring[i % slow])
        ring[i % slow] = close
        self._sums[j] = (quick, lazy)
        self._count[j] = i + 1
        a, b = quick / fast, lazy / slow
        ok = i >= slow - 1 and a == a and b == b
        self._fraction[j] = (1.0 if a > b else self.low) if ok else math.nan

    def observe(self, bars: Mapping[str, Bar]) -> None:
        """Take a bar without deciding (e.g. while trading is paused): the state stays whole."""
        for j, s in enumerate(self.symbols):
            bar = bars.get(s)
            if bar is not None and self._seen.is_new(bar):
                self._push(j, float(bar.close))

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        self.observe(bars)
        return BarTargets(
            self._fraction.copy(),
            _nan_row(len(self.symbols)),
            self._stop_loss.copy(),
            self._take_profit.copy(),
        )


class _Candles:
    """A symbol's trailing candles in preallocated arrays (amortised O(1) append)."""

    FIELDS = ("open", "high", "low", "close", "volume")

    def __init__(self, history: pd.DataFrame, keep: int) -> None:
        bars = bars_from_candles(history, "history")
        self.keep = keep
        n = min(len(bars), keep)
        self._data = np.empty((6, 2 * keep))
        self._ts = np.empty(2 * keep, dtype=np.int64)
        for k, name in enumerate(self.FIELDS):
            self._data[k, :n] = getattr(bars, name)[-n:]
        self._ts[:n] = bars.ts[-n:]
        self.size = n

    def append(self, bar: Bar) -> None:
        if self.size == self._ts.shape[0]:
            keep = self.keep
            self._data[:, :keep] = self._data[:, self.size - keep : self.size]
            self._ts[:keep] = self._ts[self.size - keep : self.size]
            self.size = keep
        k = self.size
        self._data[:5, k] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self._ts[k] = pd.Timestamp(bar.time).value
        self.size = k + 1

    def tail(self, n: int) -> Bars:
        lo = max(0, self.size - n)
        d, hi = self._data, self.size
        return Bars(
            d[0, lo:hi], d[1, lo:hi], d[2, lo:hi], d[3, lo:hi], d[4, lo:hi], self._ts[lo:hi]
        )

    def frame(self, n: int) -> pd.DataFrame:
        tail = self.tail(n)
        index = pd.DatetimeIndex(pd.to_datetime(tail.ts, utc=True), name="timestamp")
        return pd.DataFrame({k: getattr(tail, k) for k in self.FIELDS}, index=index)


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


class ModelTargets:
    """A trained model bundle's targets and ATR stops, one closed bar at a time (see the module
    docstring); equal to :func:`aitrader.pipeline.bundle_targets` on the same bars.

    ``history`` must hold, per symbol, the candles before the first bar given to :meth:`at`
    (at least the feature warm-up; the GARCH columns are NaN — no decision — until the filter's
    first fit). ``window`` overrides the trailing feature window (default: the warm-up of the
    non-GARCH features, at least :data:`SETTLED_WINDOW`). ``timings`` holds the last call's
    nanoseconds per stage (``features``, ``model``, ``policy``), summed over the symbols.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        bundle: ModelBundle,
        settings: Settings,
        history: History,
        timeframe: str,
        mode: str | None = None,
        window: int | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.bundle, self.settings, self.timeframe = bundle, settings, timeframe
        self.columns = list(bundle.predictor.feature_names)
        self.rest, self.garch = _split_specs(bundle_specs(bundle))
        self.base = timeframe_seconds(timeframe)
        self.configs: dict[str, SignalConfig] = {
            s: bundle_signal_config(bundle, settings, s, timeframe, mode) for s in self.symbols
        }
        self.stop = pipeline_stop(settings)
        missing = [s for s in self.symbols if s not in history]
        if missing:
            raise DataError(f"ModelTargets: no history for {', '.join(missing)}")
        self.warmup = self._warmup(history[self.symbols[0]])
        self.window = window or max(self.warmup, SETTLED_WINDOW)
        if self.window < self.warmup:
            raise ConfigError(f"ModelTargets: window {self.window} < feature warm-up {self.warmup}")
        regime = settings.modes.regime
        regime_bars = max(regime.trend_window, regime.vol_window + regime.vol_rank_window)
        self.keep = max(self.window, STATS_WINDOW + 1, regime_bars + 1)
        self._candles: dict[str, _Candles] = {}
        self._filters: dict[str, list[GarchFilter]] = {}
        for s in self.symbols:
            self._seed(s, history[s])
        n = len(self.symbols)
        self._last = BarTargets(_nan_row(n), _nan_row(n), _nan_row(n), _nan_row(n))
        self._seen = _Seen(self.symbols)
        for s in self.symbols:
            self._seen.last[s] = history[s].index[-1] if len(history[s]) else None
        self.timings = dict.fromkeys(STAGES, 0)

    def _warmup(self, history: pd.DataFrame) -> int:
        """Bars the trailing-window features need for a complete row (warm-up + the bar)."""
        if not self.rest:
            return self.stop.period + 1
        try:
            matrix = build_features(history, self.rest, timeframe=self.timeframe)
        except DataError as exc:
            raise DataError(
                f"ModelTargets: history too short for the feature warm-up ({exc})"
            ) from None
        return matrix.dropped_warmup + 1

    def _seed(self, symbol: str, history: pd.DataFrame) -> None:
        if len(history) < self.warmup:
            raise DataError(
                f"ModelTargets: {symbol} history has {len(history)} bars; the feature warm-up "
                f"needs at least {self.warmup}"
            )
        self._candles[symbol] = _Candles(history, self.keep)
        close = history["close"].to_numpy(np.float64)
        self._filters[symbol] = [
            GarchFilter.from_closes(close, g.window, g.refit_every) for g in self.garch
        ]

    def observe(self, bars: Mapping[str, Bar]) -> list[str]:
        """Take a bar without deciding (e.g. while trading is paused), so the candle history and
        the GARCH filters stay whole; returns the symbols that got a new bar."""
        fresh = []
        for s in self.symbols:
            bar = bars.get(s)
            if bar is None or not self._seen.is_new(bar):
                continue
            self._candles[s].append(bar)
            for f in self._filters[s]:
                f.update(float(bar.close))
            fresh.append(s)
        return fresh

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        self.timings = dict.fromkeys(STAGES, 0)
        row = self._last
        fresh = set(self.observe(bars))
        for j, s in enumerate(self.symbols):
            if s not in fresh:
                continue
            fraction, stop_loss = self._decide(s)
            row.fraction[j] = fraction / len(self.symbols)
            row.stop_loss[j] = stop_loss
        return BarTargets(
            row.fraction.copy(), row.stop_price.copy(), row.stop_loss.copy(), row.take_profit.copy()
        )

    def features(self, symbol: str) -> pd.DataFrame:
        """The feature row of ``symbol``'s last bar, in the model's column order."""
        bars = self._candles[symbol].tail(self.window)
        values: dict[str, float] = {}
        for spec in self.rest:
            computed = compute_spec(bars, spec, self.base)
            for name, column in zip(computed.columns, computed.values, strict=True):
                values[name] = float(column[-1])
        for g, f in zip(self.garch, self._filters[symbol], strict=True):
            values[g.column] = f.value
        row = np.array([[values[c] for c in self.columns]], dtype=np.float64)
        return pd.DataFrame(row, columns=self.columns)

    def _decide(self, symbol: str) -> tuple[float, float]:
        """``(signed fraction of the top band, ATR stop-loss fraction)`` at the last bar."""
        t0 = time.perf_counter_ns()
        row = self.features(symbol)
        t1 = time.perf_counter_ns()
        p_up, p_down = np.array([np.nan]), None
        if np.isfinite(row.to_numpy()).all():
            proba = self.bundle.predictor.predict_proba(row)
            p_up, p_down = direction_probabilities(proba, self.bundle.predictor.classes)
        t2 = time.perf_counter_ns()
        fraction, stop_loss = self._policy(symbol, p_up, p_down)
        t3 = time.perf_counter_ns()
        for stage, ns in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            self.timings[stage] += ns
        return fraction, stop_loss

    def _policy(
        self, symbol: str, p_up: np.ndarray, p_down: np.ndarray | None
    ) -> tuple[float, float]:
        candles = self._candles[symbol]
        config = self.configs[symbol]
        tail = candles.tail(self.keep)
        win, loss = win_loss_at(tail.close, self.settings.costs.round_trip)
        regimes = None
        if config.regime_overrides:  # labels only change the parameters through overrides
            labels = regime_labels(candles.frame(self.keep), self.settings.modes.regime)
            regimes = np.asarray(labels.to_numpy()[-1:], dtype=object)
        inputs = SignalInputs(p_up, win, loss, p_down, regimes)
        _, target = signal_targets(inputs, config, self.settings.costs, symbol, self.timeframe)
        stop = atr_stop_loss(tail.high, tail.low, tail.close, self.stop)
        return float(target[0]), float(stop[-1])
