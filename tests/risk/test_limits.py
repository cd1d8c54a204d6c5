"""RiskManager limits: hand-computed resizes and rejections, day boundary, drawdown, cool-down."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import (
    Holding,
    OrderIntent,
    PortfolioSnapshot,
    approved_fraction,
    intent_for_target,
    to_order,
)
from aitrader.risk.limits import RiskManager, drawdown_multiplier

EQUITY = 10_000.0


def at(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp, tz="UTC")


def manager(**limits: object) -> RiskManager:
    base: dict[str, object] = {
        "risk_per_trade": 0.01,
        "max_position": 0.5,
        "max_total_exposure": 1.0,
        "max_correlated_exposure": 0.6,
        "max_daily_loss": 0.03,
        "max_trades_per_day": 100,
        "drawdown_reduce_from": 0.10,
        "max_drawdown": 0.30,
    }
    return RiskManager(RiskConfig(limits=LimitsConfig.model_validate({**base, **limits})))


def buy(
    qty: float, stop: float | None = 95.0, when: str = "2024-01-01 10:00", sym: str = "BTC"
) -> OrderIntent:
    return OrderIntent(at(when), sym, qty, 100.0, stop)


def book(equity: float = EQUITY, **holdings: tuple[float, float]) -> PortfolioSnapshot:
    return PortfolioSnapshot(equity, {s: Holding(q, p) for s, (q, p) in holdings.items()})


def test_within_limits_is_accepted_unchanged() -> None:
    rm = manager()
    d = rm.check(buy(10), book())
    assert (d.action, d.approved, d.reason) == ("accept", 10, "within limits")
    assert rm.decisions == [d]


def test_risk_per_trade_resizes() -> None:
    d = manager().check(buy(40), book())  # 40 × 5 = 200 at risk > 1 % of 10 000
    assert d.action == "resize"
    assert d.approved == pytest.approx(20.0)
    assert "risk per trade" in d.reason
    assert d.approved_intent is not None and d.approved_intent.qty == pytest.approx(20.0)


def test_max_position_counts_the_existing_position() -> None:
    assert manager().check(buy(80, stop=99), book()).approved == pytest.approx(50.0)
    d = manager().check(buy(80, stop=99), book(BTC=(20, 100.0)))
    assert d.approved == pytest.approx(30.0)
    assert "max_position" in d.reason


def test_total_exposure_counts_other_symbols() -> None:
    d = manager().check(buy(80, stop=99), book(ETH=(70, 100.0)))  # room 3 000 of notional
    assert d.approved == pytest.approx(30.0)
    assert "max_total_exposure" in d.reason


def test_correlated_exposure_with_a_matrix() -> None:
    corr = pd.DataFrame([[1.0, 0.9], [0.9, 1.0]], index=["BTC", "ETH"], columns=["BTC", "ETH"])
    rm = manager(max_total_exposure=3.0, max_position=1.0)
    rm.correlations = corr
    d = rm.check(buy(40, stop=99), book(ETH=(40, 100.0)))  # 6 000 − 4 000 of room
    assert d.approved == pytest.approx(20.0)
    assert "max_correlated_exposure" in d.reason
    hedged = rm.check(buy(40, stop=99), book(ETH=(-40, 100.0)))  # a short ETH offsets
    assert hedged.action == "accept"


def test_reductions_always_pass_even_under_the_kill_switch() -> None:
    rm = manager()
    rm.engage_kill_switch(at("2024-01-01"), "manual")
    d = rm.check(buy(-5), book(BTC=(10, 100.0)))
    assert (d.action, d.reason) == ("accept", "reduces the position")
    flip = rm.check(buy(-30), book(BTC=(10, 100.0)))
    assert flip.action == "resize" and flip.approved == pytest.approx(-10.0)
    assert "kill switch" in flip.reason
    assert rm.check(buy(5), book()).action == "reject"


def test_entries_need_a_stop_when_required() -> None:
    d = manager().check(buy(5, stop=None), book())
    assert d.action == "reject" and "stop" in d.reason
    assert manager(require_stop=False).check(buy(5, stop=None), book()).action == "accept"


def test_drawdown_multiplier_is_linear() -> None:
    limits = LimitsConfig(drawdown_reduce_from=0.10, max_drawdown=0.30)
    got = [drawdown_multiplier(dd, limits) for dd in (0.0, 0.10, 0.15, 0.20, 0.25, 0.30, 0.5)]
    assert got == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_drawdown_shrinks_entries_then_max_drawdown_kills() -> None:
    rm = manager(max_daily_loss=0.9)
    rm.update_equity(at("2024-01-01 00:00"), 10_000.0)
    d = rm.check(buy(10), book(equity=8_000.0))  # 20 % drawdown → half size
    assert d.approved == pytest.approx(5.0)
    assert "drawdown 20.00%" in d.reason
    rm.update_equity(at("2024-01-01 12:00"), 7_000.0)
    assert rm.kill_switch_engaged
    assert "max drawdown" in rm.state.kill_reason
    assert rm.check(buy(1), book(equity=7_000.0)).action == "reject"


def test_daily_loss_blocks_until_the_utc_day_boundary() -> None:
    rm = manager()
    rm.update_equity(at("2024-01-01 00:00"), 10_000.0)
    d = rm.check(buy(1, when="2024-01-01 15:00"), book(equity=9_600.0))
    assert d.action == "reject" and "daily loss 4.00%" in d.reason
    late = rm.check(buy(1, when="2024-01-01 23:59"), book(equity=9_650.0))
    assert late.action == "reject"
    next_day = rm.check(buy(1, when="2024-01-02 00:30"), book(equity=9_600.0))
    assert next_day.action == "accept"
    assert rm.state.day == "2024-01-02" and rm.state.day_start_equity == 9_600.0


def test_trades_per_day_reset_at_midnight_utc() -> None:
    rm = manager(max_trades_per_day=2)
    for hour in ("01", "02"):
        assert rm.check(buy(1, when=f"2024-01-01 {hour}:00"), book()).action == "accept"
    third = rm.check(buy(1, when="2024-01-01 03:00"), book())
    assert third.action == "reject" and "trades today" in third.reason
    assert rm.check(buy(1, when="2024-01-02 00:00"), book()).action == "accept"


def test_cool_down_after_consecutive_losses() -> None:
    rm = manager(cooldown_after_losses=3, cooldown_minutes=60)
    for minute in ("00", "10", "20"):
        rm.record_trade(at(f"2024-01-01 09:{minute}"), -10.0)
    assert rm.state.cooldown_until == at("2024-01-01 10:20")
    blocked = rm.check(buy(1, when="2024-01-01 10:00"), book())
    assert blocked.action == "reject" and "cool-down" in blocked.reason
    assert rm.check(buy(1, when="2024-01-01 10:20"), book()).action == "accept"


def test_a_win_resets_the_loss_streak() -> None:
    rm = manager(cooldown_after_losses=3, cooldown_minutes=60)
    for pnl in (-1.0, -1.0, 5.0, -1.0):
        rm.record_trade(at("2024-01-01 09:00"), pnl)
    assert rm.state.cooldown_until is None and rm.state.consecutive_losses == 1


def test_flatten_sends_reduce_only_intents_that_pass() -> None:
    rm = manager()
    portfolio = book(BTC=(2, 100.0), ETH=(-3, 50.0))
    rm.engage_kill_switch(at("2024-01-01"), "manual")
    intents = rm.flatten(portfolio, at("2024-01-01 01:00"))
    assert [(i.symbol, i.qty, i.reduce_only) for i in intents] == [
        ("BTC", -2, True),
        ("ETH", 3, True),
    ]
    assert all(rm.check(i, portfolio).action == "accept" for i in intents)


def test_to_order_carries_the_stop_as_a_fraction() -> None:
    order = to_order(buy(10, stop=95.0), "abc-1")
    assert order.qty == 10 and order.stop_loss == pytest.approx(0.05)
    assert order.client_order_id == "abc-1"


def test_targets_become_intents_and_back() -> None:
    portfolio = book(BTC=(10, 100.0))
    grow = intent_for_target(at("2024-01-01"), "BTC", 0.3, 100.0, portfolio, stop=95.0)
    assert grow is not None and grow.qty == pytest.approx(20.0) and not grow.reduce_only
    shrink = intent_for_target(at("2024-01-01"), "BTC", 0.05, 100.0, portfolio)
    assert shrink is not None and shrink.qty == pytest.approx(-5.0) and shrink.reduce_only
    flip = intent_for_target(at("2024-01-01"), "BTC", -0.1, 100.0, portfolio, stop=105.0)
    assert flip is not None and flip.qty == pytest.approx(-20.0) and not flip.reduce_only
    assert intent_for_target(at("2024-01-01"), "BTC", 0.1, 100.0, portfolio) is None
    decision = manager().check(grow, portfolio)  # risk per trade caps the addition at 20
    assert approved_fraction(decision, portfolio, 100.0) == pytest.approx(0.3)
    resized = manager().check(OrderIntent(at("2024-01-01"), "BTC", 60, 100.0, 95.0), portfolio)
    assert approved_fraction(resized, portfolio, 100.0) == pytest.approx(0.3)


def test_day_roll_takes_the_utc_date_of_any_timestamp() -> None:
    """The day is remembered between bars; naive, zoned, second-unit and plain datetimes all
    roll on the UTC date."""
    from datetime import datetime, timedelta, timezone

    rm = manager()
    stamps = (
        pd.Timestamp("2024-01-01 23:59"),  # naive: taken as UTC
        pd.Timestamp("2024-01-01 20:00", tz="America/New_York"),  # 01:00 UTC on the 2nd
        pd.Timestamp("2024-01-02 12:00", tz="UTC").as_unit("s"),
        datetime(2024, 1, 3, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # 22:30 UTC, the 2nd
        pd.Timestamp("2024-01-03 00:00", tz="UTC"),
        pd.Timestamp("1969-12-31 23:00", tz="UTC"),
    )
    days = []
    for equity, stamp in enumerate(stamps):
        rm.update_equity(stamp, 10_000.0 + equity)
        days.append((rm.state.day, rm.state.day_start_equity))
    assert days == [
        ("2024-01-01", 10_000.0),
        ("2024-01-02", 10_001.0),
        ("2024-01-02", 10_001.0),
        ("2024-01-02", 10_001.0),
        ("2024-01-03", 10_004.0),
        ("1969-12-31", 10_005.0),
    ]
