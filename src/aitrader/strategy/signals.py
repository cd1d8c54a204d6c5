"""Probabilities → target positions: thresholds, conviction bands and expected-value gating.

The win probability of a side is the calibrated probability of the outcome that side trades,
net of the neutral class: ``P(up) / (P(up) + P(down))`` for a long (``P(down)`` is
``1 − P(up)`` for a binary model, so this is P(up)). Long when it is ≥ ``long_threshold``, short
when ``P(down) / (P(up) + P(down))`` ≥ ``short_threshold`` (when both qualify the likelier side
wins, a tie stays flat). Size is the multiple of the highest conviction band the win probability
reaches (flat below the lowest). A trade needs an expected value net of the round trip above
``min_ev``: ``P(up)·avg_win − P(down)·avg_loss − cost`` for a long (the neutral class moves
nothing), the mirror for a short. Overrides apply base → ``SYMBOL`` → ``SYMBOL:TIMEFRAME`` →
regime.

One vectorised function (:func:`generate`, with :func:`signal_targets` for target fractions)
serves backtests over arrays and, through :func:`decide_bar`, the live policy one bar at a time.
The EV margin and the sides a model trades are tuned on a calibration window only
(:mod:`aitrader.strategy.edge`); a model bundle stores them as :class:`SymbolThresholds` and
consumers apply them with :func:`with_tuned`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from aitrader.config import CostsConfig
from aitrader.frozen import Frozen
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
    """Net expected return of a trade that wins ``avg_win`` with probability ``p_win`` and
    loses ``avg_loss`` otherwise: ``p·avg_win − (1−p)·avg_loss − cost`` (trade plans)."""
    p = np.asarray(p_win, dtype=np.float64)
    return np.asarray(p * avg_win - (1.0 - p) * np.asarray(avg_loss) - cost, dtype=np.float64)


def gross_edge(
    p_up: FloatArray | float,
    p_down: FloatArray | float,
    avg_win: FloatArray | float,
    avg_loss: FloatArray | float,
) -> FloatArray:
    """Expected return of a long before costs: ``P(up)·avg_win − P(down)·avg_loss`` (the
    neutral class, whose moves stay inside the cost band, counts as no move)."""
    up = np.asarray(p_up, dtype=np.float64)
    down = np.asarray(p_down, dtype=np.float64)
    return np.asarray(up * avg_win - down * np.asarray(avg_loss), dtype=np.float64)


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
    moved = p_up + p_down
    with np.errstate(invalid="ignore", divide="ignore"):
        p_long = np.where(moved > 0, p_up / moved, 0.5)
    p_short = 1.0 - p_long
    long_ok = (prm["allow_long"] > 0) & (p_long >= prm["long_threshold"])
    short_ok = (prm["allow_short"] > 0) & (p_short >= prm["short_threshold"])
    both = long_ok & short_ok
    conflict = both & (p_long == p_short)
    go_long = long_ok & ~(both & (p_short >= p_long))
    go_short = short_ok & ~(both & (p_long >= p_short))
    side = np.where(go_long, 1, np.where(go_short, -1, 0)).astype(np.int8)
    p_win = np.where(side > 0, p_long, np.where(side < 0, p_short, np.maximum(p_long, p_short)))
    multiple = band_multiple(p_win, bands)
    cost = round_trip_cost(costs, config.entry_liquidity, config.exit_liquidity)
    edge = np.broadcast_to(gross_edge(p_up, p_down, inputs.avg_win, inputs.avg_loss), (n,))
    sign = np.where(side != 0, side, np.where(p_short > p_long, -1, 1))
    ev = sign * edge - cost
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


def signal_targets(
    inputs: SignalInputs,
    config: SignalConfig,
    costs: CostsConfig,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> tuple[Signals, np.ndarray]:
    """Signals and target fractions (signed; 1 is the top conviction band), NaN where P(up) is
    missing: the decision rule research, evaluation and the live target feed share."""
    signals = generate(inputs, config, costs, symbol, timeframe)
    top = max(band.multiple for band in config.bands)
    target = np.asarray(signals.target / top, dtype=np.float64)
    target[np.isnan(np.atleast_1d(np.asarray(inputs.p_up, dtype=np.float64)))] = np.nan
    return signals, target


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


class TunedThresholds(Frozen):
    """The decision tuned on a calibration window: the EV margin and the sides that made the
    most money net of costs there (``min_ev`` None: none did, the model stays flat), with the
    reasons in plain words."""

    min_ev: float | None = Field(ge=-1, le=1)
    allow_long: bool
    allow_short: bool
    coverage: float = Field(ge=0, le=1, description="share of calibration bars the gate passes")
    net_return: float = Field(description="calibration net return of the chosen decision")
    trades: int = Field(ge=0)
    samples: int = Field(ge=0)
    notes: tuple[str, ...] = ()

    @property
    def trades_anything(self) -> bool:
        return self.min_ev is not None and (self.allow_long or self.allow_short)

    def as_override(self) -> SignalOverride:
        """The override to store under ``"SYMBOL:TIMEFRAME"`` in ``SignalConfig.overrides``: the
        EV margin and sides (thresholds and bands stay as configured; they were tuned with)."""
        live = self.min_ev is not None
        return SignalOverride(
            min_ev=self.min_ev,
            allow_long=live and self.allow_long,
            allow_short=live and self.allow_short,
        )


def with_tuned(
    config: SignalConfig, symbol: str | None, timeframe: str | None, tuned: TunedThresholds
) -> SignalConfig:
    """A copy of ``config`` with the tuned decision as the symbol:timeframe override (as the
    base values when the market is unknown)."""
    override = tuned.as_override()
    if not symbol or not timeframe:
        return config.model_copy(update=override.model_dump(exclude_none=True))
    overrides = {**config.overrides, f"{symbol}:{timeframe}": override}
    return config.model_copy(update={"overrides": overrides})


class SymbolThresholds(Frozen):
    """The decision tuned for one ``symbol``:``timeframe`` on a model bundle's calibration slice
    (``window``: its first and last row), stored in the bundle and applied where it is used."""

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
        """Whether the tuned decision trades at all."""
        return self.tuned.trades_anything

    def applies_to(self, symbol: str | None, timeframe: str | None) -> bool:
        return symbol == self.symbol and timeframe == self.timeframe

    def apply(self, config: SignalConfig) -> SignalConfig:
        """``config`` with this decision as its symbol:timeframe override (``with_tuned``)."""
        return with_tuned(config, self.symbol, self.timeframe, self.tuned)

    def describe(self) -> str:
        """One line: the gate, the sides and the basis, then the reasons."""
        t = self.tuned
        basis = (
            f"on {t.samples} calibration rows {self.window[0]} → {self.window[1]}, "
            f"≥ {self.min_trades} trades"
        )
        if t.min_ev is None:
            head = f"{self.key}: no trades (no decision made money net of costs {basis})"
        else:
            sides = [s for s, on in (("long", t.allow_long), ("short", t.allow_short)) if on]
            head = (
                f"{self.key}: {' and '.join(sides)} when EV net of costs > {t.min_ev:+.4%} "
                f"(coverage {t.coverage:.1%}, {t.trades} trades, net {t.net_return:+.2%} {basis})"
            )
        return "; ".join((head, *t.notes))


def direction_probabilities(
    proba: np.ndarray, classes: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """P(up) (the highest class's probability) and P(down) (the lowest class's when the classes
    are signed, e.g. −1/0/+1; None for 0/1 labels, meaning ``1 − P(up)``)."""
    values = np.asarray(classes, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    p_up = p[:, -1]
    return p_up, (p[:, 0] if values[0] < 0 else None)
