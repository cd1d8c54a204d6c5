"""Risk-managed policy: every target change becomes an OrderIntent that the RiskManager checks.

:class:`ManagedPolicy` is the Strategy that backtest replay, paper and live runners call one bar
at a time. Each bar it: books the fills since the last bar (a closed trade goes to
``RiskManager.record_trade`` so cool-downs work); marks equity (``update_equity``: day roll,
peak, the max-drawdown kill switch); while the kill switch is engaged, sends reduce-only orders
flattening every position; turns each changed target (the same ``decide`` rule the compiled
kernel uses) into an intent, passes it to ``RiskManager.check`` and orders the approved size.

An accepted intent keeps its target fraction (sized at fill time, exactly as the kernel does);
a resized one orders the fraction of equity the approved quantity amounts to at the decision
price. A rejected entry is not retried until the target changes again.

A target with a trade plan (TP1 share, TP2, break-even, trailing or time stop) gets a
:class:`~aitrader.engine.exits.PlanState` that moves the broker's stop and take-profit at each
close and closes the position at its time stop (rules: :mod:`aitrader.engine.exits`). Once a
plan has ended (the position closed by its exits), a target with a plan enters again even if
its fraction equals the last one: a plan is a decision to enter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aitrader.engine.exits import PENDING, ExitPlan, PlanState, exit_plan, step
from aitrader.engine.policy import target_changed
from aitrader.engine.records import order_id
from aitrader.engine.tradebook import TradeBook
from aitrader.engine.types import Account, Bar, Fill, Order, Position
from aitrader.errors import ConfigError
from aitrader.risk.intents import (
    Holding,
    OrderIntent,
    PortfolioSnapshot,
    RiskDecision,
    approved_fraction,
    intent_for_target,
)
from aitrader.risk.limits import RiskManager

_target_changed = target_changed.py_func

DECISION_COLUMNS: tuple[str, ...] = (
    "time",  # decision bar (UTC open time)
    "bar",  # decision bar index (bars seen by the policy)
    "symbol",
    "action",  # accept, resize, reject
    "reason",  # the RiskManager's reason (the binding limit for a resize or reject)
    "intent",  # why the intent was made: signal, kill_switch or time_stop
    "requested",  # signed quantity asked for (base units)
    "approved",  # signed quantity allowed
    "price",  # decision price (the bar's close)
    "stop",  # protective stop price of the intent (NaN: none)
    "target",  # requested position, fraction of equity
    "approved_target",  # position the approved quantity leads to, fraction of equity
)


@dataclass(frozen=True)
class BarTargets:
    """One bar's wishes per symbol (arrays in symbol order); a NaN fraction is no decision.

    ``stop_price`` is an absolute protective stop; ``stop_loss`` / ``take_profit`` are brackets
    as fractions of the entry price. Give either a stop price or a stop-loss fraction.
    """

    fraction: np.ndarray
    stop_price: np.ndarray
    stop_loss: np.ndarray
    take_profit: np.ndarray
    plan: np.ndarray | None = None  # trade-plan fields (PLAN_FIELDS rows) × symbols; None: none
    vol: np.ndarray | None = None  # σ forecast per symbol for vol-target sizing; None: none


@dataclass(frozen=True)
class Wish:
    """An intent with what its order carries: the target, stop / TP1 distances, the trade
    plan it starts (None: none) and why it was made."""

    intent: OrderIntent
    fraction: float
    stop_loss: float | None
    take_profit: float | None
    plan: ExitPlan | None = None
    why: str = "signal"


class TargetFeed(Protocol):
    """Where targets come from: precomputed arrays in a backtest, a model in live trading."""

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        """The bar's targets. A row returned again (the same object) holds the same values:
        rows are never changed once returned."""
        ...


class Portfolio(Protocol):
    """What the policy reads from the broker: positions, fills so far, the marked account."""

    @property
    def positions(self) -> Mapping[str, Position]: ...

    @property
    def fills(self) -> Sequence[Fill]: ...

    def account(self, bars: Mapping[str, Bar]) -> Account: ...


class ArrayFeed:
    """Precomputed per-bar targets and stops; stop/bracket rows broadcast when there is one."""

    def __init__(
        self,
        fraction: np.ndarray,
        stop_price: np.ndarray,
        stop_loss: np.ndarray,
        take_profit: np.ndarray,
        plan: np.ndarray | None = None,
        vol: np.ndarray | None = None,
    ) -> None:
        self.fraction = np.ascontiguousarray(fraction, dtype=np.float64)
        self.stop_price, self.stop_loss, self.take_profit = stop_price, stop_loss, take_profit
        self.plan = plan  # bars × PLAN_FIELDS × symbols, or None
        self.vol = vol  # bars × symbols, or None

    def at(self, i: int, bars: Mapping[str, Bar]) -> BarTargets:
        def row(values: np.ndarray) -> np.ndarray:
            return np.asarray(values[i if values.shape[0] > 1 else 0], dtype=np.float64)

        plan = None if self.plan is None else self.plan[i]
        vol = None if self.vol is None else self.vol[i]
        return BarTargets(
            self.fraction[i],
            row(self.stop_price),
            row(self.stop_loss),
            row(self.take_profit),
            plan,
            vol,
        )


def protective_levels(
    fraction: float, price: float, stop_price: float, stop_loss: float
) -> tuple[float | None, float | None]:
    """``(stop price, stop-loss fraction)`` for a move to ``fraction`` at ``price``.

    A fraction gives the price ``price × (1 ∓ f)``; a price on the protective side gives the
    fraction ``|price − stop| / price``; anything else (no side, NaN, wrong side) gives None.
    """
    side = 0 if fraction == 0 else (1 if fraction > 0 else -1)
    if side == 0:
        return None, None if math.isnan(stop_loss) else stop_loss
    if not math.isnan(stop_loss):
        return price * (1.0 - side * stop_loss), stop_loss
    if math.isfinite(stop_price) and side * (price - stop_price) > 0:
        return stop_price, side * (price - stop_price) / price
    return None, None


def _with_holding(
    snapshot: PortfolioSnapshot, symbol: str, qty: float, price: float
) -> PortfolioSnapshot:
    """The snapshot as it will be once ``qty`` more of ``symbol`` is held (pending-aware)."""
    holdings = dict(snapshot.holdings)
    held = snapshot.qty(symbol) + qty
    if held == 0:
        holdings.pop(symbol, None)
    else:
        holdings[symbol] = Holding(held, price)
    return PortfolioSnapshot(snapshot.equity, holdings)


DecisionListener = Callable[[RiskDecision, Mapping[str, Any]], None]
"""Called with each RiskManager verdict and its decision-log row, before any order is made."""


class ManagedPolicy:
    """Targets → intents → RiskManager → orders, one bar at a time (see the module docstring)."""

    def __init__(
        self,
        symbols: Sequence[str],
        feed: TargetFeed,
        risk: RiskManager,
        portfolio: Portfolio,
        on_decision: DecisionListener | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.feed, self.risk, self.portfolio = feed, risk, portfolio
        self.on_decision = on_decision
        self.book = TradeBook(getattr(portfolio, "dust", None))
        self.log: list[dict[str, Any]] = []
        self.last = np.full(len(self.symbols), np.nan)
        self.plans: dict[str, PlanState] = {}
        self._tp_hits: set[str] = set()  # symbols with a take-profit fill since the last close
        self._ended: set[str] = set()  # symbols whose plan ended, no target decided since
        self.flattening: str | None = None  # an operator's flatten: close all, ask no target
        self._booked = 0
        self._seen: BarTargets | None = None  # the row the last bar's targets came from
        bind = getattr(feed, "bind", None)  # a strategy feed reads the account and risk state
        if bind is not None:
            bind(portfolio, risk)

    @property
    def booked(self) -> int:
        """Fills already booked into the trade book (and the RiskManager's trade record)."""
        return self._booked

    def checkpoint(self) -> dict[str, Any]:
        """The policy's state after a bar as JSON: its last targets (NaN as None) and the
        number of fills booked."""
        last = [None if math.isnan(v) else float(v) for v in self.last]
        plans = {s: state.to_json() for s, state in self.plans.items()}
        ended = sorted(self._ended)
        return {"last": last, "booked": self._booked, "plans": plans, "ended": ended}

    def restore(self, state: Mapping[str, Any], fills: Sequence[Fill]) -> None:
        """Put back a :meth:`checkpoint`; the trade book is rebuilt from the first ``booked``
        of ``fills`` (the risk state is restored with the RiskManager, not here)."""
        booked = int(state["booked"])
        if booked > len(fills):
            raise ValueError(f"restore: {booked} fills booked but only {len(fills)} given")
        last = [math.nan if v is None else float(v) for v in state["last"]]
        if len(last) != len(self.symbols):
            raise ValueError(f"restore: {len(last)} targets for {len(self.symbols)} symbols")
        self.last, self._seen = np.array(last, dtype=np.float64), None
        self.plans = {s: PlanState.from_json(v) for s, v in state.get("plans", {}).items()}
        self._tp_hits, self._ended = set(), set(state.get("ended", []))
        self.book = TradeBook(getattr(self.portfolio, "dust", None))
        for fill in fills[:booked]:
            self.book.add(fill)
        self._booked = booked

    def observe(self, bars: Mapping[str, Bar]) -> None:
        """A bar seen without deciding (paused): book its fills and mark equity for the
        RiskManager (day roll, peak, the max-drawdown kill switch); no intents, no orders. A
        target feed that keeps state between bars (``observe``) takes the bar too, so its
        history has no gap when trading resumes."""
        observe = getattr(self.feed, "observe", None)
        if observe is not None:
            observe(bars)
        self._track(bars)
        self._book_fills()
        account = self.portfolio.account(bars)
        self.risk.update_equity(bars[self.symbols[0]].ns, account.equity)

    def _track(self, bars: Mapping[str, Bar]) -> None:
        """Every bar's closes to the RiskManager when its sizing reads volatility."""
        if self.risk.volatility is not None:
            self.risk.observe_prices({s: bars[s].close for s in self.symbols})

    def on_bar(self, i: int, bars: Mapping[str, Bar]) -> Sequence[Order]:
        if self.flattening is not None:
            return self.flatten_all(i, bars, self.flattening)  # observes (and tracks) the bar
        risk, portfolio = self.risk, self.portfolio
        if risk.volatility is not None:
            self._track(bars)
        if len(portfolio.fills) != self._booked:
            self._book_fills()
        first = bars[self.symbols[0]]
        account = portfolio.account(bars)
        risk.update_equity(first.ns, account.equity)
        kill = risk.kill_switch_engaged
        row = self.feed.at(i, bars)
        due = self._advance(bars) if self.plans or self._tp_hits else ()
        # the last bar's row again: every target in it is ``last`` already (nothing changed)
        changed = [] if row is self._seen and not self._ended else self._changes(row)
        if due:
            due = [s for s in due if self.symbols.index(s) not in changed]
        if not (kill or changed or due):
            return ()
        time = first.time
        marks = {s: bars[s].close for s in self.symbols}
        snapshot = PortfolioSnapshot.from_engine(account, portfolio.positions, marks)
        orders = self._flatten(i, snapshot, time) if kill else []
        flattened = {o.symbol for o in orders}
        wishes = []
        for j in changed:
            symbol = self.symbols[j]
            if symbol not in flattened:
                wish = self._intent(j, row, marks[symbol], snapshot, time)
                if wish is not None:
                    wishes.append(wish)
        for symbol in due:
            if symbol not in flattened:
                intent = intent_for_target(time, symbol, 0.0, marks[symbol], snapshot, None)
                if intent is not None:
                    exit_intent = replace(intent, reason="time_stop")
                    wishes.append(Wish(exit_intent, 0.0, None, None, why="time_stop"))
        # Reductions first: they free room under the exposure limits for the entries.
        for wish in sorted(wishes, key=lambda w: not w.intent.reduce_only):
            order, snapshot = self._check(i, wish, snapshot)
            if order is not None:
                orders.append(order)
        return orders

    def _advance(self, bars: Mapping[str, Bar]) -> list[str]:
        """Each trade plan one close on (:func:`aitrader.engine.exits.step`): the broker gets
        its moved levels; returns the symbols whose time stop is due."""
        hits, self._tp_hits = self._tp_hits, set()
        due: list[str] = []
        for symbol, state in list(self.plans.items()):
            position, bar = self.portfolio.positions[symbol], bars[symbol]
            qty = position.qty if abs(position.qty) > self.book.dust.get(symbol, 0.0) else 0.0
            verdict = step(state, qty, position.avg_price, (bar.high, bar.low), symbol in hits)
            if verdict == "done":
                del self.plans[symbol]
                self._ended.add(symbol)
                continue
            levels = [state.stop, state.take_profit, state.share]
            if state.phase != PENDING and not _same(levels, state.sent):
                self.portfolio.protect(symbol, *levels)  # type: ignore[attr-defined]
                state.sent = levels
            if verdict == "time_stop":
                due.append(symbol)
        return due

    def _changes(self, row: BarTargets) -> list[int]:
        """Symbols whose target changed at this bar (the kernel's ``target_changed`` rule, run
        interpreted on a few floats), or that enter again: a target with a trade plan after
        the symbol's last plan ended; their last targets are updated."""
        self._seen = row
        last, changed = self.last, []
        targets = np.asarray(row.fraction, dtype=np.float64).ravel().tolist()
        for j, target in enumerate(targets):
            again = self.symbols[j] in self._ended and target == target != 0 and _plans(row, j)
            if again or _target_changed(target, last[j]):
                last[j] = target
                changed.append(j)
                self._ended.discard(self.symbols[j])
        return changed

    def _book_fills(self) -> None:
        """Closed trades since the last bar go to the RiskManager (losses start cool-downs)."""
        fills = self.portfolio.fills
        for fill in fills[self._booked :]:
            if fill.reason == "take_profit":
                self._tp_hits.add(fill.symbol)
            closed = self.book.add(fill)
            if closed is not None:
                ret = closed.pnl / closed.entry_notional if closed.entry_notional else None
                self.risk.record_trade(fill.time, closed.pnl, ret)
        self._booked = len(fills)

    def _intent(
        self, j: int, row: BarTargets, price: float, snapshot: PortfolioSnapshot, time: Any
    ) -> Wish | None:
        fraction = float(self.last[j])
        stop, stop_loss = protective_levels(
            fraction, price, float(row.stop_price[j]), float(row.stop_loss[j])
        )
        tp = float(row.take_profit[j])
        intent = intent_for_target(time, self.symbols[j], fraction, price, snapshot, stop)
        if intent is None:
            return None
        if row.vol is not None and math.isfinite(row.vol[j]):
            intent = replace(intent, vol=float(row.vol[j]))
        plan = None
        if fraction != 0 and row.plan is not None and _plans(row, j):
            side = 1 if fraction > 0 else -1
            sl = math.nan if stop_loss is None else stop_loss
            plan = exit_plan(side, price, (sl, tp), row.plan[:, j])
            if not hasattr(self.portfolio, "protect"):
                raise ConfigError(f"{type(self.portfolio).__name__} cannot execute trade plans")
            tp = plan.tp1
        return Wish(intent, fraction, stop_loss, None if math.isnan(tp) else tp, plan)

    def _check(
        self, i: int, wish: Wish, snapshot: PortfolioSnapshot
    ) -> tuple[Order | None, PortfolioSnapshot]:
        """The RiskManager's verdict on one intent, logged, as an order (None if rejected);
        an approved order starts its trade plan (or ends the symbol's plan)."""
        intent, fraction, plan = wish.intent, wish.fraction, wish.plan
        decision = self.risk.check(intent, snapshot)
        goal = fraction
        if decision.action != "accept":
            goal = approved_fraction(decision, snapshot, intent.price)
        self._log(i, decision, fraction, goal)
        if decision.approved == 0:
            return None, snapshot
        if plan is not None and goal != 0:
            self.plans[intent.symbol] = PlanState(plan)
        elif wish.why != "time_stop":  # a plan's own exit: it ends when the position is flat
            self.plans.pop(intent.symbol, None)
        order = Order(
            symbol=intent.symbol,
            client_order_id=order_id(intent.symbol, i, wish.why),
            target_fraction=goal,
            stop_loss=wish.stop_loss,
            take_profit=wish.take_profit,
            take_profit_share=None if plan is None or plan.share >= 1 else plan.share,
            reason=wish.why,
        )
        return order, _with_holding(snapshot, intent.symbol, decision.approved, intent.price)

    def flatten_all(self, i: int, bars: Mapping[str, Bar], reason: str) -> list[Order]:
        """An operator's flatten: the bar is observed (no target asked) and every position is
        closed through the kill switch's reduce-only, risk-checked path, tagged ``reason``."""
        self.observe(bars)
        account = self.portfolio.account(bars)
        marks = {s: bars[s].close for s in self.symbols}
        snapshot = PortfolioSnapshot.from_engine(account, self.portfolio.positions, marks)
        return self._flatten(i, snapshot, bars[self.symbols[0]].time, reason)

    def _flatten(
        self, i: int, snapshot: PortfolioSnapshot, time: Any, reason: str = "kill_switch"
    ) -> list[Order]:
        """Reduce-only intents closing every position, checked and logged (kill switch)."""
        orders = []
        for intent in self.risk.flatten(snapshot, time):
            intent = replace(intent, reason=reason)
            decision = self.risk.check(intent, snapshot)
            self._log(i, decision, 0.0, approved_fraction(decision, snapshot, intent.price))
            if decision.approved != 0:
                self.plans.pop(intent.symbol, None)
                oid = order_id(intent.symbol, i, reason)
                order = Order(
                    intent.symbol, oid, reduce_only=True, target_fraction=0.0, reason=reason
                )
                orders.append(order)
        return orders

    def _log(self, i: int, decision: RiskDecision, target: float, goal: float) -> None:
        intent = decision.intent
        stop = intent.stop if intent is not None and intent.stop is not None else math.nan
        row = {
            **{"time": decision.time, "bar": i, "symbol": decision.symbol},
            **{"action": decision.action, "reason": decision.reason},
            "intent": intent.reason if intent is not None else "",
            **{"requested": decision.requested, "approved": decision.approved},
            "price": intent.price if intent is not None else math.nan,
            **{"stop": stop, "target": target, "approved_target": goal},
        }
        self.log.append(row)
        if self.on_decision is not None:
            self.on_decision(decision, row)


def _plans(row: BarTargets, j: int) -> bool:
    """Whether symbol ``j``'s target carries a trade plan."""
    plan = row.plan
    return plan is not None and not bool(np.isnan(plan[:, j]).all())


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    """Equal level lists (NaN equals NaN)."""
    if len(a) != len(b):
        return False
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def decisions_frame(log: list[dict[str, Any]]) -> pd.DataFrame:
    """The policy's decision log as DECISION_COLUMNS (one row per RiskManager verdict)."""
    frame = pd.DataFrame(log, columns=list(DECISION_COLUMNS))
    frame["bar"] = frame["bar"].astype(np.int64)
    return frame
