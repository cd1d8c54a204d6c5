"""Properties of RiskManager.check: never grows an order, never breaks a limit, always explains."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import Holding, OrderIntent, PortfolioSnapshot
from aitrader.risk.limits import RiskManager

FAST = settings(max_examples=200, deadline=None)
T0 = pd.Timestamp("2024-01-01 12:00", tz="UTC")
SYMBOLS = ("BTC", "ETH", "SOL")

qty = st.floats(-500, 500, allow_nan=False).filter(lambda q: abs(q) > 1e-6)
price = st.floats(1.0, 1_000.0)
limits = st.builds(
    LimitsConfig,
    risk_per_trade=st.floats(0.001, 0.1),
    max_position=st.floats(0.1, 3.0),
    max_total_exposure=st.floats(0.1, 5.0),
    max_correlated_exposure=st.floats(0.1, 5.0),
    drawdown_reduce_from=st.floats(0.0, 0.2),
    max_drawdown=st.floats(0.25, 0.9),
    require_stop=st.booleans(),
)
holdings = st.dictionaries(
    st.sampled_from(SYMBOLS), st.builds(Holding, qty=st.floats(-50, 50), price=price), max_size=3
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[RiskManager, OrderIntent, PortfolioSnapshot, float]:
    rm = RiskManager(RiskConfig(limits=draw(limits)))
    peak = draw(st.floats(1_000.0, 100_000.0))
    rm.update_equity(T0, peak)
    equity = peak * draw(st.floats(0.5, 1.0))
    p = draw(price)
    stop = draw(st.none() | st.floats(0.5, 1.5).map(lambda f: p * f))
    intent = OrderIntent(T0, draw(st.sampled_from(SYMBOLS)), draw(qty), p, stop)
    if draw(st.booleans()):
        matrix = [[1.0, 0.9, 0.2], [0.9, 1.0, 0.5], [0.2, 0.5, 1.0]]
        rm.correlations = pd.DataFrame(matrix, index=SYMBOLS, columns=SYMBOLS)
    return rm, intent, PortfolioSnapshot(equity, draw(holdings)), equity


@FAST
@given(scenario())
def test_approved_never_exceeds_requested_and_keeps_its_sign(case: tuple) -> None:
    rm, intent, portfolio, _ = case
    d = rm.check(intent, portfolio)
    assert abs(d.approved) <= abs(d.requested) + 1e-9
    assert d.approved == 0 or (d.approved > 0) == (d.requested > 0)
    assert d.reason.strip()
    assert d.action == ("accept" if d.approved == d.requested else d.action)
    assert rm.decisions[-1] is d


@FAST
@given(scenario())
def test_new_exposure_never_exceeds_the_limits(case: tuple) -> None:
    rm, intent, portfolio, equity = case
    lim = rm.limits
    held = portfolio.qty(intent.symbol)
    d = rm.check(intent, portfolio)
    after = held + d.approved
    if abs(after) <= abs(held) and (after == 0 or (after > 0) == (held > 0)):
        return  # a reduction: always allowed
    opened = abs(after) if (held == 0 or (after > 0) != (held > 0)) else abs(after) - abs(held)
    tol = 1e-6 * equity
    assert (
        abs(after) * intent.price <= max(lim.max_position * equity, abs(held) * intent.price) + tol
    )
    others = portfolio.gross_excluding(intent.symbol)
    assert abs(after) * intent.price + others <= lim.max_total_exposure * equity + tol
    if intent.stop is not None:
        assert opened * abs(intent.price - intent.stop) <= lim.risk_per_trade * equity + tol
    else:
        assert not lim.require_stop
