"""Metrics: cross-checked against quantstats on real returns, hand-computed cases, properties."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.analytics import metrics as m
from aitrader.engine.result import BacktestResult

qs = pytest.importorskip("quantstats")

# quantstats' own definitions match ours exactly (same formulas), so only float noise remains.
REL = 1e-10


def _daily_returns(close: pd.Series) -> pd.Series:
    """Close-to-close daily returns on a naive index (quantstats' preferred input)."""
    r = close.pct_change().dropna()
    r.index = r.index.tz_localize(None)
    return r


@pytest.fixture(scope="module", params=["BTC-365", "SPY-252"])
def daily(
    request: pytest.FixtureRequest, btc_1h: pd.DataFrame, spy_1d: pd.DataFrame
) -> tuple[pd.Series, int]:
    """(returns, periods): BTC daily closes on the 365-day crypto calendar, SPY on 252 sessions."""
    if request.param == "BTC-365":
        return _daily_returns(btc_1h["close"].resample("1D").last().dropna()), 365
    return _daily_returns(spy_1d["close"]), 252


def _qs(fn: Callable[..., float], *args: object, **kwargs: object) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(*args, **kwargs))


def test_ratios_match_quantstats(daily: tuple[pd.Series, int]) -> None:
    r, periods = daily
    pairs = {
        "sharpe": (m.sharpe(r, periods), _qs(qs.stats.sharpe, r, periods=periods)),
        "sortino": (m.sortino(r, periods), _qs(qs.stats.sortino, r, periods=periods)),
        "volatility": (m.volatility(r, periods), _qs(qs.stats.volatility, r, periods=periods)),
        "cagr": (m.cagr(r, periods), _qs(qs.stats.cagr, r, periods=periods)),
        "calmar": (m.calmar(r, periods), _qs(qs.stats.calmar, r, periods=periods)),
        "max_drawdown": (m.max_drawdown(r), -_qs(qs.stats.max_drawdown, r)),
        "total_return": (m.total_return(r), _qs(qs.stats.comp, r)),
    }
    for name, (ours, theirs) in pairs.items():
        assert ours == pytest.approx(theirs, rel=REL), name
    assert 0.1 < pairs["max_drawdown"][0] < 0.9


def test_outcome_stats_match_quantstats(daily: tuple[pd.Series, int]) -> None:
    r, _ = daily
    assert m.win_rate(r) == pytest.approx(_qs(qs.stats.win_rate, r), rel=REL)
    assert m.profit_factor(r) == pytest.approx(_qs(qs.stats.profit_factor, r), rel=REL)
    assert m.payoff_ratio(r) == pytest.approx(_qs(qs.stats.payoff_ratio, r), rel=REL)


def test_rolling_sharpe_matches_quantstats(daily: tuple[pd.Series, int]) -> None:
    r, periods = daily
    ours = m.rolling_sharpe(r, 63, periods)
    theirs = qs.stats.rolling_sharpe(r, rolling_period=63, periods_per_year=periods)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-8, equal_nan=True)
    assert ours.iloc[:62].isna().all() and ours.iloc[62:].notna().all()


def test_hourly_strategy_returns_match_quantstats(btc_result: BacktestResult) -> None:
    """Bar returns of an hourly run, annualised with 8,760 bars a year on both sides."""
    r = btc_result.returns
    r.index = r.index.tz_localize(None)
    periods = 24 * 365
    assert m.sharpe(r, periods) == pytest.approx(_qs(qs.stats.sharpe, r, periods=periods), rel=REL)
    assert m.sortino(r, periods) == pytest.approx(
        _qs(qs.stats.sortino, r, periods=periods), rel=REL
    )
    assert m.max_drawdown(r) == pytest.approx(-_qs(qs.stats.max_drawdown, r), rel=REL)


def test_hand_computed_return_metrics() -> None:
    r = [0.1, -0.2, 0.05]
    # wealth 1.1, 0.88, 0.924; mean -1/60; sample var 0.0516667 / 2
    assert m.total_return(r) == pytest.approx(-0.076)
    assert m.cagr(r, 3) == pytest.approx(-0.076)
    assert m.cagr(r, 6) == pytest.approx(0.924**2 - 1)
    assert m.max_drawdown(r) == pytest.approx(0.2)
    assert m.max_drawdown_duration(r) == 2
    assert m.recovery_bars(r) is None
    assert m.volatility(r, 1) == pytest.approx(math.sqrt(0.0516666667 / 2))
    assert m.sharpe(r, 1) == pytest.approx(-0.103695, abs=1e-6)
    assert m.sharpe(r, 4) == pytest.approx(2 * -0.103695, abs=2e-6)
    assert m.sortino(r, 1) == pytest.approx((-1 / 60) / math.sqrt(0.04 / 3))
    assert m.calmar(r, 3) == pytest.approx(-0.076 / 0.2)


def test_drawdown_duration_and_recovery() -> None:
    r = [0.1, -0.1, 0.0, 0.2, -0.5, 1.0, 0.5]
    # wealth 1.1, .99, .99, 1.188, .594, 1.188, 1.782
    np.testing.assert_allclose(m.drawdown(r), [0, -0.1, -0.1, 0, -0.5, 0, 0], atol=1e-12)
    assert m.longest_underwater(r) == (1, 2)
    assert m.recovery_bars(r) == 1
    assert m.max_drawdown([-0.5, -1.0, 0.3]) == 1.0
    assert m.max_drawdown([-2.0]) == 1.0  # equity below zero: a total loss, no more


def test_hand_computed_trade_stats() -> None:
    pnl = [100.0, -50.0, 0.0, 30.0, -20.0]
    assert m.win_rate(pnl) == 0.5  # the breakeven trade is left out
    assert m.profit_factor(pnl) == pytest.approx(130 / 70)
    assert m.payoff_ratio(pnl) == pytest.approx(65 / 35)
    assert m.expectancy(pnl) == pytest.approx(12.0)
    assert m.profit_factor([5.0, 1.0]) == math.inf
    assert m.turnover(30_000.0, 10_000.0) == 3.0
    assert m.time_in_market([0, 0.5, 1.0, 0]) == 0.5
    assert m.average_exposure([0, 0.5, -1.0, 0]) == 0.375


def test_undefined_metrics_are_nan_not_numbers() -> None:
    flat = np.zeros(50)
    assert m.volatility(flat, 252) == 0.0
    assert m.max_drawdown(flat) == 0.0 and m.recovery_bars(flat) == 0
    for fn in (m.sharpe, m.sortino, m.calmar):
        assert math.isnan(fn(flat, 252))
    assert math.isnan(m.sharpe(np.full(10, 0.001), 252))  # constant: no volatility
    for fn in (m.win_rate, m.profit_factor, m.payoff_ratio, m.expectancy):
        assert math.isnan(fn([]))
    assert math.isnan(m.total_return([])) and math.isnan(m.cagr([], 365))
    assert math.isnan(m.payoff_ratio([1.0, 2.0]))
    assert math.isnan(m.turnover(100.0, 0.0))
    assert m.rolling_sharpe(pd.Series(np.zeros(30)), 10, 365).isna().all()


def test_compute_metrics_on_replayed_run(btc_result: BacktestResult) -> None:
    out = m.compute_metrics(btc_result)
    json.dumps(out, allow_nan=False)
    trades = btc_result.trades
    closed = trades[~trades["is_open"].astype(bool)]
    assert out["bars_per_year"] == 8760 and out["calendar"] == "crypto"
    assert out["trades"] == len(closed) > 100 and out["open_trades"] == len(trades) - len(closed)
    assert out["final_equity"] == pytest.approx(btc_result.equity.iloc[-1])
    assert out["total_return"] == pytest.approx(btc_result.equity.iloc[-1] / 10_000 - 1)
    assert out["fees_paid"] == pytest.approx(btc_result.fills["fee"].sum())
    assert out["fees_paid"] == pytest.approx(trades["fees"].sum())
    assert out["win_rate"] == pytest.approx((closed["pnl"] > 0).mean())
    assert out["expectancy"] == pytest.approx(closed["pnl"].mean())
    assert out["avg_holding_bars"] == pytest.approx(closed["bars_held"].mean())
    assert out["avg_holding_hours"] == pytest.approx(out["avg_holding_bars"], rel=0.01)
    assert out["time_in_market"] == pytest.approx((btc_result.exposure > 0).mean())
    costs = btc_result.fills["fee"].sum() + btc_result.slippage_paid
    assert out["costs_pct_of_initial"] == pytest.approx(100 * costs / 10_000)  # a percent
    assert out["expectancy_pct"] == pytest.approx(100 * closed["return"].mean())
    assert 0 < out["max_drawdown"] < 1 and out["max_drawdown_duration_days"] > 1
    bench = out["benchmarks"]["buy-and-hold"]
    hold = btc_result.benchmarks["buy-and-hold"]
    assert bench["total_return"] == pytest.approx(hold.iloc[-1] / 10_000 - 1)


def test_compute_metrics_on_a_run_without_trades(
    btc_1h: pd.DataFrame, make_flat: Callable[..., BacktestResult]
) -> None:
    out = m.compute_metrics(make_flat(btc_1h.iloc[:500], "1h"))
    text = json.dumps(out, allow_nan=False)
    assert out["trades"] == 0 and out["total_return"] == 0.0 and out["max_drawdown"] == 0.0
    assert out["sharpe"] is None and out["win_rate"] is None and out["profit_factor"] is None
    assert out["fees_paid"] == 0.0 and out["time_in_market"] == 0.0
    assert "NaN" not in text and "Infinity" not in text


def test_calendar_sets_annualisation(
    spy_1d: pd.DataFrame, replay: Callable[..., BacktestResult]
) -> None:
    """The same daily run annualised on 252 sessions vs 365 days differs by sqrt(365/252)."""
    equity_run = replay(spy_1d, "1d", calendar="equity")
    crypto_run = dataclasses.replace(equity_run, calendar="crypto")
    a, b = m.compute_metrics(equity_run), m.compute_metrics(crypto_run)
    assert a["bars_per_year"] == 252 and b["bars_per_year"] == 365
    assert b["volatility"] / a["volatility"] == pytest.approx(math.sqrt(365 / 252))
    assert b["sharpe"] / a["sharpe"] == pytest.approx(math.sqrt(365 / 252))


def test_monthly_returns_compound_to_total(btc_result: BacktestResult) -> None:
    table = m.monthly_returns(btc_result.returns)
    assert list(table.columns) == list(range(1, 13)) and list(table.index) == list(
        range(2017, 2023)
    )
    monthly = table.stack().dropna()
    assert (1 + monthly).prod() - 1 == pytest.approx(m.total_return(btc_result.returns), rel=1e-9)


returns_lists = st.lists(
    # rounded to 1e-12 like real bar returns, so squares cannot underflow
    st.floats(min_value=-0.99, max_value=5.0, allow_nan=False).map(lambda x: round(x, 12)),
    min_size=2,
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(returns_lists)
def test_drawdown_bounds(r: list[float]) -> None:
    dd = m.drawdown(r)
    assert 0.0 <= m.max_drawdown(r) <= 1.0
    assert ((dd <= 0) & (dd >= -1)).all()
    start, length = m.longest_underwater(r)
    assert 0 <= start + length <= len(r) and (dd[start : start + length] < 0).all()
    never_recovered = bool((dd[int(np.argmin(dd)) :] < 0).all())
    assert (m.recovery_bars(r) is None) == never_recovered


@settings(max_examples=200, deadline=None)
@given(returns_lists, st.floats(min_value=0.01, max_value=100.0))
def test_sharpe_and_sortino_are_scale_invariant(r: list[float], k: float) -> None:
    base, scaled = m.sharpe(r, 365), m.sharpe(np.asarray(r) * k, 365)
    if math.isnan(base):
        assert len(set(r)) == 1
    else:
        assert scaled == pytest.approx(base, rel=1e-7, abs=1e-9)
        assert m.sharpe(-np.asarray(r), 365) == pytest.approx(-base, rel=1e-9, abs=1e-12)
    s, s_scaled = m.sortino(r, 365), m.sortino(np.asarray(r) * k, 365)
    assert math.isnan(s) == math.isnan(s_scaled)
    if not math.isnan(s):
        assert s_scaled == pytest.approx(s, rel=1e-7, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(returns_lists, returns_lists)
def test_total_return_compounds_over_concatenation(a: list[float], b: list[float]) -> None:
    joined = m.total_return(a + b)
    assert 1 + joined == pytest.approx((1 + m.total_return(a)) * (1 + m.total_return(b)), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), max_size=100))
def test_outcome_stats_ranges(pnl: list[float]) -> None:
    wr, pf = m.win_rate(pnl), m.profit_factor(pnl)
    assert math.isnan(wr) or 0.0 <= wr <= 1.0
    assert math.isnan(pf) or pf >= 0.0
    assert math.isnan(wr) == (not any(x != 0 for x in pnl))


def test_units_format_fractions_percents_and_money() -> None:
    from aitrader.analytics.units import format_metric

    assert format_metric("max_drawdown", 0.8008) == "80.08%"
    assert format_metric("costs_pct_of_initial", 25.43) == "25.43 %"
    assert format_metric("fees_paid", 1.559e5) == "155,900.00"
    assert format_metric("sharpe", 1.23456) == "1.235"
    assert format_metric("trades", 1234) == "1,234"
    assert format_metric("sharpe", None) == "–" and format_metric("ruined", False) == "False"
