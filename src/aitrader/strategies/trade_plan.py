"""Fibonacci / ATR trade plans on a probability signal, executed by the engine's plan exits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.engine.baselines import sma_crossover_targets
from aitrader.errors import ConfigError, DataError
from aitrader.models.garch import GarchAgentModel
from aitrader.strategy.base import (
    PLAN_FIELDS,
    Context,
    Decision,
    Environment,
    Param,
    Strategy,
    Target,
    TargetFrame,
)
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.edge import require_stop_agent
from aitrader.strategy.plans import (
    PlanContext,
    PlanLevels,
    TradePlan,
    make_plan,
    plan_levels,
    stop_distance,
)
from aitrader.strategy.regimes import find_agent
from aitrader.strategy.signals import Signal, SignalInputs, Signals, generate

EPSILON = 1e-6
NOMINAL_EQUITY = 10_000.0  # sizes a plan's displayed quantity; execution is sized by the risk


@dataclass(frozen=True)
class Probabilities:
    """P(up) (and P(down), None: 1 − P(up)) per bar time, and where they come from."""

    p_up: pd.Series
    p_down: pd.Series | None
    source: str


def baseline_probabilities(
    candles: pd.DataFrame, config: SignalConfig, fast: int, slow: int
) -> Probabilities:
    """The SMA crossover mapped onto the probability scale — NOT a model: ``p_up`` is just
    above the long threshold (and the lowest band) while SMA fast > SMA slow, else 0.5, so the
    EV gate and the plan rules decide whether it trades."""
    state = sma_crossover_targets(candles["close"].to_numpy(np.float64), fast, slow)
    p_long = min(1.0, max(config.long_threshold, config.bands[0].min_prob) + EPSILON)
    p_up = np.where(state == 1.0, p_long, np.where(state == 0.0, 0.5, np.nan))
    source = (
        f"baseline sma-cross {fast}/{slow} — NOT a model: p_up = {p_long:.6f} while "
        f"SMA{fast} > SMA{slow}, else 0.5"
    )
    return Probabilities(pd.Series(p_up, index=candles.index), None, source)


def file_probabilities(path: Path) -> Probabilities:
    """``p_up`` (and optional ``p_down``) by timestamp from a Parquet file (checked in [0, 1])."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read probabilities ({exc})") from None
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    if "p_up" not in frame.columns or not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{path}: need a 'p_up' column indexed by timestamp")
    index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    frame = frame.set_axis(index.tz_convert("UTC"))
    columns = {}
    for name in ("p_up", "p_down"):
        if name in frame.columns:
            values = frame[name].astype(np.float64)
            finite = values[np.isfinite(values)]
            if len(finite) and (finite.min() < 0 or finite.max() > 1):
                raise DataError(f"{path} {name}: probabilities must lie in [0, 1]")
            columns[name] = values
    source = f"probabilities file {path} ({int(np.isfinite(columns['p_up']).sum())} bars)"
    return Probabilities(columns["p_up"], columns.get("p_down"), source)


@dataclass(frozen=True)
class Decisions:
    """One symbol's signals and plan levels over a run of bars (what every decision reads),
    the P(up) they came from and its source."""

    candles: pd.DataFrame
    signals: Signals  # of bars ``first`` on (all of them unless a decision asked for the last)
    levels: PlanLevels
    p_up: np.ndarray
    source: str
    first: int = 0  # the bar ``signals`` start at


class TradePlanStrategy(Strategy):
    """Trade plans: entry at market, ATR or swing stop, TP1/TP2 by R-multiples or Fibonacci
    extensions, TP1 share, break-even after TP1, ATR trailing stop, time stop.

    Signals come from probabilities through the thresholds, bands and EV gate (``signals:``
    settings): a Parquet file (``probabilities=FILE``) or, by default, the SMA crossover mapped
    onto the probability scale (NOT a model). Each fresh signal (its side differs from the
    last bar's) whose plan passes the plan rules (``plans:`` settings: TP1 net of costs, EV
    margin) targets ``side × band multiple × size`` with the plan; the position then leaves
    by the plan's exits, which the engine executes (docs/STRATEGIES.md, "Trade plans"), or
    by a fresh opposite signal. The risk manager sizes every entry.
    """

    name = "trade-plan"
    fast = Param(10, low=2, high=100, step=1, help="fast SMA of the baseline signal (bars)")
    slow = Param(30, low=3, high=400, step=1, help="slow SMA of the baseline signal (bars)")
    size = Param(1.0, low=0.01, high=10.0, help="target per band multiple, fraction of equity")
    probabilities = Param(None, type=str, help="Parquet file: p_up (p_down) by timestamp")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.source: Probabilities | None = None
        self.signal_config: SignalConfig | None = None

    def check(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ConfigError(f"trade-plan: fast ({self.fast}) must be below slow ({self.slow})")
        self.warmup = self.slow + 1

    def use(self, source: Probabilities | None, signal: SignalConfig | None) -> None:
        """Decide on these probabilities and signal settings (``aitrader scan``; its model
        bundle comes with the environment: its GARCH agent places garch stops)."""
        self.source, self.signal_config = source, signal

    def setup(self, env: Environment) -> None:
        self.settings, self.timeframe = env.settings, env.timeframe
        self.signal = self.signal_config or env.settings.signals
        if self.source is None and self.probabilities:
            self.source = file_probabilities(Path(self.probabilities))
        self.frames = {s: env.history.get(s) for s in env.symbols}
        agent = find_agent(env.bundle, GarchAgentModel)
        self.vol_agent = require_stop_agent(env.settings.plans, agent)

    def decisions(self, candles: pd.DataFrame, symbol: str, last: int | None = None) -> Decisions:
        """Signals and plan levels of every bar of ``candles`` (causal: bar t reads bars ≤ t);
        ``last``: the signals of the last ``last`` bars only (a bar's decision reads its own and
        the bar before; the signal rule goes row by row, so they are the same numbers)."""
        if last is not None and last < 2:
            raise ValueError("a decision reads the signals of its bar and the bar before: last ≥ 2")
        cfg = self.settings.plans
        levels = plan_levels(candles, cfg, self.vol_agent)
        probs = self.source or baseline_probabilities(candles, self.signal, self.fast, self.slow)
        p_up = probs.p_up.reindex(candles.index).to_numpy(np.float64)
        p_down = None if probs.p_down is None else probs.p_down.reindex(candles.index).to_numpy()
        loss = stop_distance(levels, cfg, candles["close"].to_numpy(np.float64))
        first = 0 if last is None else max(len(candles) - last, 0)
        rows = slice(first, None)
        tail = None if p_down is None else p_down[rows]
        inputs = SignalInputs(p_up[rows], cfg.tp1_r * loss[rows], loss[rows], tail)
        signals = generate(inputs, self.signal, self.settings.costs, symbol, self.timeframe)
        return Decisions(candles, signals, levels, p_up, probs.source, first)

    def plan(self, decided: Decisions, t: int, symbol: str, equity: float) -> TradePlan | None:
        """The plan of bar ``t`` (None without a signal), sized for display at ``equity``."""
        signals, k = decided.signals, t - decided.first
        if signals.side[k] == 0:
            return None
        one = Signal(int(signals.side[k]), float(signals.multiple[k]), float(signals.p_win[k]),
                     float(signals.ev[k]), "trade")  # fmt: skip
        ctx = PlanContext(
            symbol, self.timeframe, equity, self.settings.costs, self.settings.plans,
            self.settings.risk.sizing, self.signal,
        )  # fmt: skip
        return make_plan(decided.candles, decided.levels, t, one, ctx)

    def target(self, decided: Decisions, t: int, symbol: str) -> Target | None:
        """Bar ``t``'s decision: the plan of a fresh signal (its side differs from the last
        bar's) when the plan rules accept it, else none (the plan running goes on)."""
        side, k = decided.signals.side, t - decided.first
        if side[k] == 0 or (t > 0 and side[k - 1] == side[k]):
            return None
        plan = self.plan(decided, t, symbol, NOMINAL_EQUITY)
        if plan is None or plan.status != "accepted":
            return None
        cfg, close = self.settings.plans, float(decided.candles["close"].iat[t])
        return Target(
            plan.side * float(decided.signals.multiple[k]) * self.size,
            stop_price=plan.stop, take_profit_price=plan.tp1, tp2_price=plan.tp2,
            tp1_share=cfg.tp1_fraction, break_even=True,
            trail=cfg.trail_atr * plan.atr / close, time_stop=cfg.max_hold_bars,
        )  # fmt: skip

    def on_bar(self, ctx: Context) -> Decision:
        out: dict[str, Target | float | None] = {}
        for s in ctx.symbols:
            frame = _appended(self.frames.get(s), ctx.bars[s])
            self.frames[s] = frame
            out[s] = self.target(self.decisions(frame, s, last=2), len(frame) - 1, s)
        return out

    def observe(self, ctx: Context) -> None:
        for s in ctx.symbols:
            self.frames[s] = _appended(self.frames.get(s), ctx.bars[s])

    def vectorized(self, data: Mapping[str, pd.DataFrame], start: int = 0) -> TargetFrame:
        index = next(iter(data.values())).index
        names = ("fraction", "stop_price", *PLAN_FIELDS)
        columns: dict[str, dict[str, np.ndarray]] = {k: {} for k in names}
        for s, frame in data.items():
            decided = self.decisions(frame, s)
            rows = np.full((len(names), len(frame)), np.nan)
            for t in range(start, len(frame)):
                rows[:, t] = _row(self.target(decided, t, s))
            for k, name in enumerate(names):
                columns[name][s] = rows[k]
        frames = {k: pd.DataFrame(v, index=index) for k, v in columns.items()}
        return TargetFrame(**frames)


def _row(decision: Target | float | None) -> np.ndarray:
    """A decision as (fraction, stop_price, the plan fields); NaN where none."""
    row = np.full(2 + len(PLAN_FIELDS), np.nan)
    if isinstance(decision, Target):
        row[0], row[1] = decision.fraction, decision.stop_price
        row[2:] = decision.plan_row() or row[2:]
    elif decision is not None:
        row[0] = decision
    return row


def _appended(frame: pd.DataFrame | None, bar: Any) -> pd.DataFrame:
    """``frame`` with one more bar (a repeated or older bar leaves it as it is)."""
    stamp = pd.Timestamp(bar.time)
    if frame is not None and len(frame) and stamp <= frame.index[-1]:
        return frame
    row = pd.DataFrame(
        {k: [float(getattr(bar, k))] for k in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex([stamp], name="timestamp"),
    )
    return row if frame is None or not len(frame) else pd.concat([frame, row])
