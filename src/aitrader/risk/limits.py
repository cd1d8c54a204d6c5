"""The RiskManager: every order intent passes through :meth:`RiskManager.check`.

Reductions always pass. Entries are blocked by the kill switch, the maximum drawdown, the daily
loss limit (reset at the UTC day boundary), the cool-down after consecutive losses and the daily
trade count; otherwise they are shrunk to fit the drawdown size reduction, the risk per trade and
the position, total and correlated exposure limits and, unless ``risk.sizing.method`` is
``target``, the sizing rule (fixed fractional, Kelly, vol target). Every verdict is kept in
``decisions``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd

from aitrader.engine.types import built
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import Action, OrderIntent, PortfolioSnapshot, RiskDecision
from aitrader.risk.sizing import VolatilityTracker, position_size, sizing_label
from aitrader.risk.state import JsonRiskStateStore, MemoryRiskStateStore, RiskState, RiskStateStore

logger = logging.getLogger(__name__)

ACCEPT_REASON = "within limits"
_NS_PER_DAY = 86_400 * 10**9
_TOLERANCE = 1e-9


def utc(time: pd.Timestamp | int) -> pd.Timestamp:
    """The timestamp in UTC (naive timestamps are taken as UTC; an int is ns since the epoch)."""
    if isinstance(time, pd.Timestamp) and time.tzinfo is UTC:
        return time  # already (what tz_convert would return, a few µs sooner)
    ts = pd.Timestamp(time)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def drawdown_multiplier(drawdown: float, limits: LimitsConfig) -> float:
    """1 up to ``drawdown_reduce_from``, falling linearly to 0 at ``max_drawdown``."""
    start, stop = limits.drawdown_reduce_from, limits.max_drawdown
    if drawdown <= start:
        return 1.0
    if drawdown >= stop:
        return 0.0
    return (stop - drawdown) / (stop - start)


def split_intent(held: float, qty: float) -> tuple[float, float]:
    """``(closing, opening)`` signed parts of an order against a held position."""
    if held == 0 or (held > 0) == (qty > 0):
        return 0.0, qty
    if abs(qty) <= abs(held):
        return qty, 0.0
    return -held, qty + held


class RiskManager:
    """Checks intents against the limits and keeps the state that must survive restarts."""

    def __init__(
        self,
        config: RiskConfig,
        store: RiskStateStore | None = None,
        correlations: pd.DataFrame | None = None,
    ) -> None:
        self.config = config
        self.limits = config.limits
        if store is None:
            path = config.state_path
            store = JsonRiskStateStore(path) if path else MemoryRiskStateStore()
        self._store = store
        self._state = store.load() or RiskState()
        self.correlations = correlations
        self.decisions: list[RiskDecision] = []
        self.scale: tuple[float, str] = (1.0, "")  # an outside size multiplier and its reason
        self._day: tuple[int | None, str] = (None, "")  # the last UTC day number and its text
        sizing = config.sizing
        self.volatility = VolatilityTracker(sizing) if sizing.method == "vol_target" else None

    @property
    def state(self) -> RiskState:
        return self._state

    def observe_prices(self, closes: Mapping[str, float]) -> None:
        """A bar's closes, for vol-target sizing (the policy calls this every bar when
        ``volatility`` is set; otherwise there is nothing to track)."""
        if self.volatility is not None:
            self.volatility.update(closes)

    @property
    def kill_switch_engaged(self) -> bool:
        return self._state.kill_switch

    def _set(self, **changes: Any) -> None:
        """The state with ``changes`` (field values), saved when any field differs."""
        values = vars(self._state)
        if all(values[k] is v or values[k] == v for k, v in changes.items()):
            return
        new = built(RiskState, {**values, **changes})
        self._state = new
        self._store.save(new)

    # -- state updates --------------------------------------------------------------------

    def update_equity(self, time: pd.Timestamp | int, equity: float) -> None:
        """Roll the UTC day, track the equity peak, engage the kill switch at max drawdown
        (``time``: the bar's time, or its ``Bar.ns``)."""
        known = self._day  # the day of the last call: most bars fall on it
        same = type(time) is int and time // _NS_PER_DAY == known[0]
        day = known[1] if same else self._utc_day(time)
        state = self._state
        if day != state.day:
            self._set(day=day, day_start_equity=equity, trades_today=0)
            state = self._state
        if equity > state.peak_equity:
            self._set(peak_equity=equity)
        reached = self.drawdown(equity) >= self.limits.max_drawdown
        if reached and self.limits.kill_on_max_drawdown and not self._state.kill_switch:
            reason = f"max drawdown {self.limits.max_drawdown:.1%} reached"
            self.engage_kill_switch(utc(time), reason)

    def _utc_day(self, time: pd.Timestamp | int) -> str:
        """``utc(time).date().isoformat()``, remembered for the day of the last call (a
        Timestamp's ``value`` is UTC nanoseconds since the epoch; naive ones count as UTC; an
        int is that value)."""
        value = time if type(time) is int else getattr(time, "value", None)
        if not isinstance(value, int):
            return utc(time).date().isoformat()
        number = value // _NS_PER_DAY
        if number != self._day[0]:
            self._day = (number, utc(time).date().isoformat())
        return self._day[1]

    def record_trade(self, time: pd.Timestamp, pnl: float, ret: float | None = None) -> None:
        """Count consecutive losses; start the cool-down when they reach the limit. ``ret``
        (P&L over the entry notional) joins the recent returns Kelly sizing reads."""
        if ret is not None and self.config.sizing.method == "kelly" and math.isfinite(ret):
            window = self.config.sizing.kelly_window
            self._set(trade_returns=(*self._state.trade_returns, float(ret))[-window:])
        if pnl >= 0:
            self._set(consecutive_losses=0)
            return
        losses = self._state.consecutive_losses + 1
        if losses >= self.limits.cooldown_after_losses and self.limits.cooldown_minutes > 0:
            until = utc(time) + pd.Timedelta(minutes=self.limits.cooldown_minutes)
            self._set(consecutive_losses=0, cooldown_until=until)
        else:
            self._set(consecutive_losses=losses)

    def engage_kill_switch(self, time: pd.Timestamp, reason: str) -> None:
        """Block every new entry until :meth:`reset_kill_switch`; persisted at once."""
        self._set(kill_switch=True, kill_reason=reason, kill_time=utc(time))
        logger.warning(
            "kill switch engaged at %s: %s (no new entries until it is reset)",
            time,
            reason,
            extra={"reason": reason, "time": str(time)},
        )

    def reset_kill_switch(self, time: pd.Timestamp) -> None:
        """Explicitly re-allow entries (the only way the kill switch clears)."""
        logger.warning("kill switch reset", extra={"time": str(time)})
        self._set(kill_switch=False, kill_reason="", kill_time=None)

    def scale_entries(self, multiplier: float, reason: str) -> None:
        """Scale new entries by ``multiplier`` (in (0, 1]; 1: off) until told otherwise, e.g.
        while a model has drifted; a cap like the drawdown reduction, named by ``reason``."""
        if not 0 < multiplier <= 1:
            raise ValueError(f"size multiplier must be in (0, 1], got {multiplier}")
        self.scale = (float(multiplier), reason)

    def flatten(self, portfolio: PortfolioSnapshot, time: pd.Timestamp) -> list[OrderIntent]:
        """Reduce-only intents closing every open position (what the kill switch sends)."""
        return [
            OrderIntent(utc(time), s, -h.qty, h.price, reduce_only=True, reason="kill_switch")
            for s, h in sorted(portfolio.holdings.items())
            if h.qty != 0
        ]

    # -- checks ---------------------------------------------------------------------------

    def drawdown(self, equity: float) -> float:
        """``1 − equity / peak`` below a positive peak, else 0 (NaN: 0)."""
        peak = self._state.peak_equity
        return 1.0 - equity / peak if peak > 0.0 and equity < peak else 0.0

    def size_multiplier(self, equity: float) -> float:
        """The drawdown size reduction applied to new entries now."""
        return drawdown_multiplier(self.drawdown(equity), self.limits)

    def blocking_reason(self, time: pd.Timestamp, equity: float) -> str | None:
        """Why no entry may be opened now, or None."""
        s, lim = self._state, self.limits
        if s.kill_switch:
            return f"kill switch engaged ({s.kill_reason})"
        dd = self.drawdown(equity)
        if dd >= lim.max_drawdown:
            return f"drawdown {dd:.2%} ≥ max_drawdown {lim.max_drawdown:.2%}"
        if s.day_start_equity > 0:
            loss = 1.0 - equity / s.day_start_equity
            if loss >= lim.max_daily_loss:
                return f"daily loss {loss:.2%} ≥ max_daily_loss {lim.max_daily_loss:.2%}"
        if s.cooldown_until is not None and utc(time) < s.cooldown_until:
            return f"cool-down after {lim.cooldown_after_losses} losses until {s.cooldown_until}"
        if s.trades_today >= lim.max_trades_per_day:
            return f"{s.trades_today} trades today ≥ max_trades_per_day {lim.max_trades_per_day}"
        return None

    def check(self, intent: OrderIntent, portfolio: PortfolioSnapshot) -> RiskDecision:
        """The verdict on one intent (recorded in ``decisions``); the state is updated first."""
        self.update_equity(intent.time, portfolio.equity)
        closing, opening = split_intent(portfolio.qty(intent.symbol), intent.qty)
        if intent.reduce_only or opening == 0:
            approved = closing if intent.reduce_only else intent.qty
            reason = "reduces the position" if approved == intent.qty else "reduce-only: capped"
            return self._record(intent, approved, reason)
        blocked = self.blocking_reason(intent.time, portfolio.equity)
        if blocked is None and intent.stop is None and self.limits.require_stop:
            blocked = "entry without a stop price (require_stop)"
        if blocked is not None:
            return self._record(intent, closing, blocked)
        allowed, binding = self._cap_opening(intent, opening, closing, portfolio)
        if abs(allowed) * intent.price < max(self.limits.min_notional, _TOLERANCE):
            return self._record(intent, closing, f"no room for an entry: {binding}")
        self._set(trades_today=self._state.trades_today + 1)
        reason = ACCEPT_REASON if allowed == opening else binding
        return self._record(intent, closing + allowed, reason)

    def _cap_opening(
        self, intent: OrderIntent, opening: float, closing: float, portfolio: PortfolioSnapshot
    ) -> tuple[float, str]:
        """The opening quantity allowed by every sizing limit, and the binding limit(s)."""
        lim, equity, price = self.limits, portfolio.equity, intent.price
        side = 1.0 if opening > 0 else -1.0
        base = abs(portfolio.qty(intent.symbol) + closing)
        caps = {"requested": abs(opening)}
        mult = self.size_multiplier(equity)
        if mult < 1.0:
            caps[f"drawdown {self.drawdown(equity):.2%}: size ×{mult:.3f}"] = abs(opening) * mult
        outside, why = self.scale
        if outside < 1.0:
            caps[f"{why or 'scaled'}: size ×{outside:.3f}"] = abs(opening) * outside
        if intent.stop is not None and intent.stop != price:
            caps[f"risk per trade {lim.risk_per_trade:.2%}"] = (
                lim.risk_per_trade * equity / abs(price - intent.stop)
            )
        sized = self._sized(intent, equity)
        if sized is not None:
            caps[sized[0]] = sized[1] - base
        caps[f"max_position {lim.max_position:.2f}×equity"] = (
            lim.max_position * equity / price - base
        )
        others = portfolio.gross_excluding(intent.symbol)
        caps[f"max_total_exposure {lim.max_total_exposure:.2f}×equity"] = (
            lim.max_total_exposure * equity - others
        ) / price - base
        group = self._correlated_notional(intent.symbol, portfolio)
        if group is not None:
            caps[f"max_correlated_exposure {lim.max_correlated_exposure:.2f}×equity"] = (
                lim.max_correlated_exposure * equity - side * group
            ) / price - base
        allowed = max(0.0, min(caps.values()))
        if allowed >= abs(opening) * (1 - _TOLERANCE):
            return opening, ACCEPT_REASON
        binding = [name for name, cap in caps.items() if cap <= allowed * (1 + _TOLERANCE)]
        return side * allowed, "; ".join(n for n in binding if n != "requested")

    def _sized(self, intent: OrderIntent, equity: float) -> tuple[str, float] | None:
        """``risk.sizing``'s position size for this entry and its name (None: ``target``)."""
        config = self.config.sizing
        if config.method == "target":
            return None
        returns = np.asarray(self._state.trade_returns, dtype=np.float64)
        vol = intent.vol
        if vol is None and self.volatility is not None:
            vol = self.volatility.vol(intent.symbol)
        stop = math.nan if intent.stop is None else intent.stop
        qty = position_size(equity, intent.price, stop, config, returns, vol)
        label = sizing_label(config, returns.size)
        if config.method == "vol_target" and intent.vol is not None:
            label += f" (σ {intent.vol:.3%} forecast by the strategy)"
        return label, qty

    def _correlated_notional(self, symbol: str, portfolio: PortfolioSnapshot) -> float | None:
        """Signed notional of the other symbols correlated with ``symbol`` (None: no matrix)."""
        corr = self.correlations
        if corr is None or symbol not in corr.index:
            return None
        total = 0.0
        for other, held in portfolio.holdings.items():
            if other == symbol or other not in corr.columns:
                continue
            rho = float(corr.loc[symbol, other])
            if math.isfinite(rho) and rho >= self.limits.correlation_threshold:
                total += held.notional
        return total

    def _record(self, intent: OrderIntent, approved: float, reason: str) -> RiskDecision:
        action: Action = "accept"
        if approved != intent.qty:
            action = "reject" if approved == 0 else "resize"
        decision = RiskDecision(
            utc(intent.time), intent.symbol, action, reason, intent.qty, approved, intent
        )
        self.decisions.append(decision)
        if action != "accept":
            logger.info("risk %s", action, extra={"symbol": intent.symbol, "reason": reason})
        return decision
