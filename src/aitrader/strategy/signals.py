"""Probabilities → target positions: thresholds, conviction bands and expected-value gating.

Long when P(up) ≥ ``long_threshold``, short when P(down) ≥ ``short_threshold`` (P(down) is
1 − P(up) for a binary model; when both qualify the likelier side wins, a tie stays flat). Size
is the multiple of the highest conviction band the win probability reaches (flat below the
lowest). A trade needs ``p·avg_win − (1−p)·avg_loss − round-trip cost > min_ev``. Overrides
apply base → ``SYMBOL`` → ``SYMBOL:TIMEFRAME`` → regime.

One vectorised function (:func:`generate`) serves backtests over arrays and, through
:func:`decide_bar`, the live policy one bar at a time. Threshold tuning (:func:`tune_thresholds`)
runs on validation data only; its result becomes a per symbol:timeframe override. A model
bundle stores it as :class:`SymbolThresholds` (tuned on the bundle's calibration slice at
``aitrader train``) and consumers apply it with :func:`with_tuned`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from aitrader.config import CostsConfig
from aitrader.strategy.config import Band, SignalConfig, SignalOverride

REASONS: tuple[str, ...] = (
    "trade",
    "no probability",
    "below threshold",
    "below lowest band",
    "expected value below margin",
    "long and short both qualify equally",
)
TRADE, NO_PROB, BELOW_THRESHOLD, BELOW_BAND, LOW_EV, CONFLICT = range(6)

FloatArray = np.ndarray


@dataclass(frozen=True)
class SignalParams:
    """Thresholds, bands and EV margin after every override was applied."""

    long_threshold: float
    short_threshold: float
    min_ev: float
    allow_long: bool
    allow_short: bool
    bands: tuple[Band, ...]


def _apply(params: SignalParams, override: SignalOverride | None) -> SignalParams:
    if override is None:
        return params
    changes = override.model_dump(exclude_none=True)
    return SignalParams(**{**params.__dict__, **changes})


def resolve(
    config: SignalConfig,
    symbol: str | None = None,
    timeframe: str | None = None,
    regime: str | None = None,
) -> SignalParams:
    """The effective parameters: base → symbol → symbol:timeframe → regime overrides."""
    params = SignalParams(
        config.long_threshold,
        config.short_threshold,
        config.min_ev,
        config.allow_long,
        config.allow_short,
        config.bands,
    )
    if symbol is not None:
        params = _apply(params, config.overrides.get(symbol))
        if timeframe is not None:
            params = _apply(params, config.overrides.get(f"{symbol}:{timeframe}"))
    if regime is not None:
        params = _apply(params, config.regime_overrides.get(regime))
    return params


def round_trip_cost(costs: CostsConfig, entry: str = "taker", exit: str = "taker") -> float:
    """Fees of both legs plus slippage on each taker leg, as a fraction of notional."""
    leg_cost = {
        "taker": costs.taker_fee + costs.slippage_bps / 10_000,
        "maker": costs.maker_fee,
    }
    return leg_cost[entry] + leg_cost[exit]


def expected_value(
    p_win: FloatArray | float,
    avg_win: FloatArray | float,
    avg_loss: FloatArray | float,
    cost: float,
) -> FloatArray:
    """Net expected return per trade: ``p·avg_win − (1−p)·avg_loss − cost`` (fractions)."""
    p = np.asarray(p_win, dtype=np.float64)
    return np.asarray(p * avg_win - (1.0 - p) * np.asarray(avg_loss) - cost, dtype=np.float64)


def band_multiple(p_win: FloatArray, bands: Sequence[Band]) -> FloatArray:
    """Multiple of the highest band whose ``min_prob`` ``p_win`` reaches (0 below all bands)."""
    p = np.asarray(p_win, dtype=np.float64)
    out = np.zeros_like(p)
    for band in bands:
        out = np.where(p >= band.min_prob, band.multiple, out)
    return out


@dataclass(frozen=True)
class SignalInputs:
    """Per-bar inputs (arrays, or scalars for one bar); ``p_down`` None means ``1 − p_up``;
    ``avg_win`` / ``avg_loss``: typical winning / losing trade returns (positive fractions)."""

    p_up: FloatArray | float
    avg_win: FloatArray | float
    avg_loss: FloatArray | float
    p_down: FloatArray | float | None = None
    regimes: Sequence[str] | np.ndarray | pd.Series | str | None = None


@dataclass(frozen=True)
class Signals:
    """Vectorised decisions: side (+1/−1/0), size multiple, win probability, net EV, reason."""

    side: np.ndarray
    multiple: np.ndarray
    p_win: np.ndarray
    ev: np.ndarray
    reason: np.ndarray

    @property
    def target(self) -> np.ndarray:
        """Signed target position in units of the base size."""
        return np.asarray(self.side * self.multiple, dtype=np.float64)

    def reason_text(self, i: int) -> str:
        return REASONS[int(self.reason[i])]


@dataclass(frozen=True)
class Signal:
    """One bar's decision."""

    side: int
    multiple: float
    p_win: float
    ev: float
    reason: str

    @property
    def target(self) -> float:
        return self.side * self.multiple


def _param_arrays(
    config: SignalConfig,
    n: int,
    regimes: Sequence[str] | np.ndarray | pd.Series | str | None,
    where: tuple[str | None, str | None],
) -> tuple[dict[str, np.ndarray], tuple[Band, ...]]:
    """Thresholds, EV margins and side switches per bar (they vary with the regime)."""
    labels = (
        np.full(n, "", dtype=object)
        if regimes is None
        else np.broadcast_to(np.asarray(regimes, dtype=object), (n,))
    )
    fields = ("long_threshold", "short_threshold", "min_ev", "allow_long", "allow_short")
    out = {f: np.empty(n, dtype=np.float64) for f in fields}
    bands = resolve(config, *where).bands
    for label in set(labels.tolist()):
        params = resolve(config, *where, regime=label or None)
        mask = labels == label
        for f in fields:
            out[f][mask] = float(getattr(params, f))
    return out, bands


def generate(
    inputs: SignalInputs,
    config: SignalConfig,
    costs: CostsConfig,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Signals:
    """Target positions for every bar: threshold → band multiple → EV gate (net of costs)."""
    p_up = np.atleast_1d(np.asarray(inputs.p_up, dtype=np.float64))
    n = p_up.shape[0]
    p_down = 1.0 - p_up if inputs.p_down is None else np.asarray(inputs.p_down, dtype=np.float64)
    p_down = np.broadcast_to(p_down, (n,))
    prm, bands = _param_arrays(config, n, inputs.regimes, (symbol, timeframe))
    missing = ~(np.isfinite(p_up) & np.isfinite(p_down))
    long_ok = (prm["allow_long"] > 0) & (p_up >= prm["long_threshold"])
    short_ok = (prm["allow_short"] > 0) & (p_down >= prm["short_threshold"])
    both = long_ok & short_ok
    conflict = both & (p_up == p_down)
    go_long = long_ok & ~(both & (p_down >= p_up))
    go_short = short_ok & ~(both & (p_up >= p_down))
    side = np.where(go_long, 1, np.where(go_short, -1, 0)).astype(np.int8)
    p_win = np.where(side > 0, p_up, np.where(side < 0, p_down, np.maximum(p_up, p_down)))
    multiple = band_multiple(p_win, bands)
    cost = round_trip_cost(costs, config.entry_liquidity, config.exit_liquidity)
    ev = np.broadcast_to(expected_value(p_win, inputs.avg_win, inputs.avg_loss, cost), (n,))
    ev_ok = ev > prm["min_ev"]
    reason = np.select(
        [missing, conflict, side == 0, multiple == 0, ~ev_ok],
        [NO_PROB, CONFLICT, BELOW_THRESHOLD, BELOW_BAND, LOW_EV],
        TRADE,
    ).astype(np.int8)
    trade = reason == TRADE
    return Signals(
        side=np.where(trade, side, 0).astype(np.int8),
        multiple=np.where(trade, multiple, 0.0),
        p_win=p_win,
        ev=np.asarray(ev, dtype=np.float64),
        reason=reason,
    )


def decide_bar(
    inputs: SignalInputs,
    config: SignalConfig,
    costs: CostsConfig,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Signal:
    """The decision for one bar (scalar inputs) through the same code as :func:`generate`."""
    out = generate(inputs, config, costs, symbol, timeframe)
    return Signal(
        side=int(out.side[0]),
        multiple=float(out.multiple[0]),
        p_win=float(out.p_win[0]),
        ev=float(out.ev[0]),
        reason=out.reason_text(0),
    )


class TunedThresholds(BaseModel):
    """Thresholds reaching a target win rate with the most trades, fitted on validation data;
    a side whose threshold is None never reached the target and is disabled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    long_threshold: float | None
    short_threshold: float | None
    long_win_rate: float = Field(ge=0, le=1)
    short_win_rate: float = Field(ge=0, le=1)
    long_coverage: float = Field(ge=0, le=1)
    short_coverage: float = Field(ge=0, le=1)
    target_win_rate: float = Field(gt=0, lt=1)
    samples: int = Field(ge=0)

    def as_override(self) -> SignalOverride:
        """The override to store under ``"SYMBOL:TIMEFRAME"`` in ``SignalConfig.overrides``."""
        return SignalOverride(
            long_threshold=self.long_threshold,
            short_threshold=self.short_threshold,
            allow_long=self.long_threshold is not None,
            allow_short=self.short_threshold is not None,
        )


DEFAULT_GRID: tuple[float, ...] = tuple(round(0.5 + 0.01 * i, 2) for i in range(46))


def _pick(
    p: np.ndarray, won: np.ndarray, target: float, min_trades: int, grid: Sequence[float]
) -> tuple[float | None, float, float]:
    """Lowest grid threshold reaching ``target`` (max coverage), its win rate and coverage."""
    for t in sorted(grid):
        taken = p >= t
        count = int(taken.sum())
        if count < min_trades:
            break
        rate = float(won[taken].mean())
        if rate >= target:
            return float(t), rate, count / p.size
    return None, 0.0, 0.0


def tune_thresholds(
    p_up: np.ndarray,
    outcomes: np.ndarray,
    target_win_rate: float,
    p_down: np.ndarray | None = None,
    min_trades: int = 30,
    grid: Sequence[float] = DEFAULT_GRID,
) -> TunedThresholds:
    """Per-side thresholds from validation probabilities and outcomes (+1 up, −1 down, 0 flat);
    pass validation rows only: tuning on the test window leaks it into the thresholds."""
    p_up = np.asarray(p_up, dtype=np.float64)
    y = np.asarray(outcomes, dtype=np.float64)
    down = 1.0 - p_up if p_down is None else np.asarray(p_down, dtype=np.float64)
    keep = np.isfinite(p_up) & np.isfinite(down) & np.isfinite(y)
    p_up, down, y = p_up[keep], down[keep], y[keep]
    long_: tuple[float | None, float, float] = (None, 0.0, 0.0)
    short_ = long_
    if p_up.size:
        long_ = _pick(p_up, y > 0, target_win_rate, min_trades, grid)
        short_ = _pick(down, y < 0, target_win_rate, min_trades, grid)
    return TunedThresholds(
        long_threshold=long_[0],
        short_threshold=short_[0],
        long_win_rate=long_[1],
        short_win_rate=short_[1],
        long_coverage=long_[2],
        short_coverage=short_[2],
        target_win_rate=target_win_rate,
        samples=int(p_up.size),
    )


def with_tuned(
    config: SignalConfig, symbol: str, timeframe: str, tuned: TunedThresholds
) -> SignalConfig:
    """A copy of ``config`` with the tuned thresholds as the symbol:timeframe override."""
    overrides = {**config.overrides, f"{symbol}:{timeframe}": tuned.as_override()}
    return config.model_copy(update={"overrides": overrides})


class SymbolThresholds(BaseModel):
    """Thresholds tuned for one ``symbol``:``timeframe`` on a model bundle's calibration slice
    (``window``: its first and last row), stored in the bundle and applied where it is used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1)
    timeframe: str = Field(min_length=1)
    min_trades: int = Field(ge=1)
    window: tuple[str, str]
    tuned: TunedThresholds

    @property
    def key(self) -> str:
        """The ``SignalConfig.overrides`` key the thresholds go under."""
        return f"{self.symbol}:{self.timeframe}"

    @property
    def reached(self) -> bool:
        """Whether at least one side reached the target win rate."""
        return self.tuned.long_threshold is not None or self.tuned.short_threshold is not None

    def applies_to(self, symbol: str | None, timeframe: str | None) -> bool:
        return symbol == self.symbol and timeframe == self.timeframe

    def apply(self, config: SignalConfig) -> SignalConfig:
        """``config`` with these thresholds as its symbol:timeframe override (``with_tuned``)."""
        return with_tuned(config, self.symbol, self.timeframe, self.tuned)

    def describe(self) -> str:
        """One line: each side's threshold (or that it never reached the target) and the basis."""
        t = self.tuned
        sides = []
        for side, threshold, rate, coverage in (
            ("long", t.long_threshold, t.long_win_rate, t.long_coverage),
            ("short", t.short_threshold, t.short_win_rate, t.short_coverage),
        ):
            if threshold is None:
                sides.append(f"{side} disabled (target not reached)")
            else:
                sides.append(
                    f"{side} ≥ {threshold:.2f} (win rate {rate:.1%}, coverage {coverage:.1%})"
                )
        basis = (
            f"target win rate {t.target_win_rate:.0%} with ≥ {self.min_trades} trades on "
            f"{t.samples} calibration rows {self.window[0]} → {self.window[1]}"
        )
        return f"{self.key}: {', '.join(sides)}; {basis}"


def direction_probabilities(
    proba: np.ndarray, classes: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """P(up) (the highest class's probability) and P(down) (the lowest class's when the classes
    are signed, e.g. −1/0/+1; None for 0/1 labels, meaning ``1 − P(up)``)."""
    values = np.asarray(classes, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    p_up = p[:, -1]
    return p_up, (p[:, 0] if values[0] < 0 else None)


def class_outcomes(y: np.ndarray, classes: Sequence[float] | np.ndarray) -> np.ndarray:
    """Labels as :func:`tune_thresholds` outcomes, consistent with
    :func:`direction_probabilities`: +1 for the highest class, −1 for the lowest, 0 otherwise
    (for 0/1 labels, "not up" counts as down); NaN stays NaN."""
    values = np.asarray(classes, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    out = np.where(labels == values[-1], 1.0, np.where(labels == values[0], -1.0, 0.0))
    return np.where(np.isfinite(labels), out, np.nan)
