"""Trade-plan exits after the entry: TP1 partial, break-even, trailing and time stops.

One :class:`PlanState` per symbol lives in :class:`~aitrader.engine.managed_policy.ManagedPolicy`
(the one decision path of backtest, paper and live runs). The broker executes the levels the
plan sets (``protect(symbol, stop, take_profit, share)``) with the fill rules it applies to any
bracket; the plan only moves them, once per bar at the close:

1. **Entry**: the entry order carries the stop and TP1 as distances from the fill (and the
   share of the position TP1 closes), so the entry bar is protected like any bracket.
2. **Each close while the position is held** (the first one is the close of the bar the entry
   filled in, or of the bar after a fill at the close): the bar counts as held; the best price
   (high for a long, low for a short) updates; then
   * a take-profit fill since the last close with the position still open is TP1: with
     ``break_even`` the stop moves to the average entry price (fees not included), and the
     take-profit becomes TP2 for the whole rest (none without TP2);
   * the trailing stop is the best price less ``trail`` × the entry price;
   * the stop only ever tightens (ratchets): a new level that would loosen it is ignored;
   * after ``time_stop`` bars held, the position is closed by a market order, risk-checked
     like any exit (it fills when signals fill: the next bar's open by default).
3. **Intrabar** (the broker's bracket rule): a gap through a level fills at the open; a bar
   reaching both the stop and the take-profit is a stop (pessimistic; sub-bars resolve it when
   given); a level moved at a close acts from the next bar on — so the bar in which TP1 fills
   keeps the stop the plan had at its open.

The plan ends when the position is flat (stop, TP2, time stop, a signal) or changes side — at
the first close after the entry order too, when the entry did not fill or was stopped out in
its own bar; a new target for the symbol replaces it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

PENDING, OPEN, AFTER_TP1 = "pending", "open", "after_tp1"


@dataclass(frozen=True)
class ExitPlan:
    """A plan's exits as distances (fractions of the entry price; NaN: none)."""

    side: int
    stop: float = math.nan
    tp1: float = math.nan
    share: float = 1.0
    tp2: float = math.nan
    break_even: bool = False
    trail: float = math.nan
    time_stop: int = 0


@dataclass
class PlanState:
    """Where one symbol's plan stands: its levels (prices) and what it has seen."""

    plan: ExitPlan
    phase: str = PENDING
    entry: float = math.nan
    best: float = math.nan
    held: int = 0
    stop: float = math.nan
    take_profit: float = math.nan
    share: float = 1.0
    sent: list[float] = field(default_factory=list)  # the levels the broker holds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["plan"] = {k: _num(v) for k, v in asdict(self.plan).items()}
        for key in ("entry", "best", "stop", "take_profit"):
            out[key] = _num(out[key])
        out["sent"] = [_num(v) for v in self.sent]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanState:
        p = data["plan"]
        plan = ExitPlan(
            int(p["side"]), _nan(p["stop"]), _nan(p["tp1"]), float(p["share"]), _nan(p["tp2"]),
            bool(p["break_even"]), _nan(p["trail"]), int(p["time_stop"]),
        )  # fmt: skip
        state = cls(plan, str(data["phase"]))
        for key in ("entry", "best", "stop", "take_profit"):
            setattr(state, key, _nan(data[key]))
        state.held, state.share = int(data["held"]), float(data["share"])
        state.sent = [_nan(v) for v in data["sent"]]
        return state


def tighter(side: int, stop: float, level: float) -> float:
    """The tighter of two stops for a position on ``side`` (NaN: none); never loosens."""
    if level != level:
        return stop
    if stop != stop:
        return level
    return max(stop, level) if side > 0 else min(stop, level)


def step(state: PlanState, qty: float, avg: float, bar: tuple[float, float], tp_hit: bool) -> str:
    """Advance one close: ``qty``/``avg`` the position now, ``bar`` its (high, low), ``tp_hit``
    whether a take-profit filled since the last close. Returns ``"done"`` when the plan is
    over, ``"time_stop"`` when the position must be closed now, else ``""``."""
    plan, side = state.plan, state.plan.side
    if qty * side <= 0.0:  # closed; or, at the first close, never filled or out in its bar
        return "done"
    if state.phase == PENDING:
        state.phase, state.entry, state.best = OPEN, avg, avg
        state.stop = _level(avg, side, -plan.stop)
        state.take_profit, state.share = _level(avg, side, plan.tp1), plan.share
    if tp_hit and state.phase == OPEN:
        state.phase = AFTER_TP1
        if plan.break_even:
            state.stop = tighter(side, state.stop, state.entry)
        state.take_profit, state.share = _level(state.entry, side, plan.tp2), 1.0
    state.held += 1
    high, low = bar
    state.best = max(state.best, high) if side > 0 else min(state.best, low)
    if plan.trail == plan.trail:
        state.stop = tighter(side, state.stop, state.best - side * plan.trail * state.entry)
    if plan.time_stop and state.held >= plan.time_stop:
        return "time_stop"
    return ""


def exit_plan(side: int, price: float, levels: tuple[float, float], row: Any) -> ExitPlan:
    """The plan of an entry on ``side`` decided at ``price``: ``levels`` are its stop and TP1
    distances (NaN: none), ``row`` the plan fields (PLAN_FIELDS order); absolute prices
    become distances from ``price`` (a level on the wrong side is none)."""
    tp1_price, share, tp2, tp2_price, break_even, trail, bars = (float(v) for v in row)
    stop, tp1 = levels
    if tp1 != tp1:
        tp1 = _distance(side, price, tp1_price)
    if tp2 != tp2:
        tp2 = _distance(side, price, tp2_price)
    share = 1.0 if share != share else share
    return ExitPlan(side, stop, tp1, share, tp2, break_even == 1.0, trail, _bars(bars))


def _distance(side: int, price: float, level: float) -> float:
    """How far ``level`` lies from ``price`` in the position's favour (NaN: not beyond it)."""
    if not (level == level and side * (level - price) > 0.0):
        return math.nan
    return side * (level - price) / price


def _bars(value: float) -> int:
    return int(value) if value == value and value > 0 else 0


def _level(price: float, side: int, distance: float) -> float:
    """``price`` moved ``distance`` (fraction) in the position's favour; NaN for none."""
    return math.nan if distance != distance else price * (1.0 + side * distance)


def _num(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
