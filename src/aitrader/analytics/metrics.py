"""Performance metrics as pure functions: arrays or Series in, numbers out.

Conventions shared by every function here:

- ``returns`` are simple bar returns of equity, the first bar relative to the initial cash
  (``BacktestResult.returns``). NaN and ±inf observations are ignored, as quantstats does.
- ``periods`` is the number of bars in a year, ``bars_per_year(timeframe, calendar)``: 365 days
  around the clock for crypto, 252 sessions for equities (quantstats' ``periods`` argument).
- The risk-free rate is 0 throughout.
- A metric that is undefined on its input (no trades, zero volatility, no drawdown, no losing
  outcome) is ``nan`` here and ``null`` in ``compute_metrics``' JSON; it is never replaced by 0 or
  by a large stand-in number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from aitrader.data.timeframes import bars_per_year
from aitrader.engine.result import BacktestResult

ArrayLike: TypeAlias = pd.Series | np.ndarray | Sequence[float]
NAN = float("nan")


def _values(x: ArrayLike) -> np.ndarray:
    """Finite float64 values of ``x`` (NaN and ±inf dropped)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _wealth(returns: ArrayLike) -> np.ndarray:
    """Growth of one unit of capital bar by bar: cumulative product of (1 + r)."""
    return np.cumprod(1.0 + _values(returns))


def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole series, prod(1 + r) - 1; nan when empty."""
    r = _values(returns)
    return float(np.prod(1.0 + r) - 1.0) if len(r) else NAN


def cagr(returns: ArrayLike, periods: float) -> float:
    """Compound annual growth, (1 + total)^(1/years) - 1 with years = bars / periods.

    Years are counted in bars, as quantstats does; nan when empty or when wealth ends below zero.
    """
    r = _values(returns)
    if not len(r):
        return NAN
    wealth = float(np.prod(1.0 + r))
    return NAN if wealth < 0 else wealth ** (periods / len(r)) - 1.0


def volatility(returns: ArrayLike, periods: float) -> float:
    """Annualised volatility: sample std (ddof=1) of bar returns times sqrt(periods)."""
    r = _values(returns)
    return float(np.std(r, ddof=1) * math.sqrt(periods)) if len(r) >= 2 else NAN


def sharpe(returns: ArrayLike, periods: float) -> float:
    """Sharpe ratio, rf = 0: mean / std (ddof=1) of bar returns times sqrt(periods).

    nan with fewer than two bars or when every return is identical (zero volatility).
    """
    r = _values(returns)
    sd = float(np.std(r, ddof=1)) if len(r) >= 2 else 0.0
    if sd == 0 or np.ptp(r) == 0:
        return NAN
    return float(np.mean(r) / sd * math.sqrt(periods))


def sortino(returns: ArrayLike, periods: float) -> float:
    """Sortino ratio, target 0: mean / downside deviation times sqrt(periods).

    Downside deviation = sqrt(sum(min(r, 0)^2) / N) over all N bars (Red Rock / quantstats);
    nan when no bar lost.
    """
    r = _values(returns)
    if not len(r):
        return NAN
    downside = math.sqrt(float(np.sum(np.minimum(r, 0.0) ** 2)) / len(r))
    return NAN if downside == 0 else float(np.mean(r) / downside * math.sqrt(periods))


def drawdown(returns: ArrayLike) -> np.ndarray:
    """Drawdown at each bar, wealth / running peak - 1 (≤ 0), the peak starting at 1 (initial
    cash); values below -1 (equity under zero) are clipped to -1."""
    wealth = _wealth(returns)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0)) if len(wealth) else wealth
    return np.clip(wealth / peak - 1.0, -1.0, 0.0)


def drawdown_series(returns: pd.Series) -> pd.Series:
    """``drawdown`` keeping the index of ``returns`` (NaN bars carry no change)."""
    clean = returns.replace([np.inf, -np.inf], np.nan).fillna(0.0)
    return pd.Series(drawdown(clean), index=returns.index, name="drawdown")


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss as a positive fraction in [0, 1]; 0 when never under water."""
    dd = drawdown(returns)
    return abs(float(dd.min())) if len(dd) else NAN


def longest_underwater(returns: ArrayLike) -> tuple[int, int]:
    """(first bar, length in bars) of the longest run of bars below a prior peak; (0, 0) if none.

    A run that has not recovered by the end of the data counts up to the last bar.
    """
    under = np.concatenate([[False], drawdown(returns) < 0, [False]])
    edges = np.flatnonzero(np.diff(under.astype(np.int8)))
    if not len(edges):
        return 0, 0
    starts, ends = edges[0::2], edges[1::2]
    longest = int(np.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest] - starts[longest])


def max_drawdown_duration(returns: ArrayLike) -> int:
    """Length in bars of the longest stretch spent below a prior equity peak."""
    return longest_underwater(returns)[1]


def recovery_bars(returns: ArrayLike) -> int | None:
    """Bars from the deepest trough until equity regains the peak before it.

    0 when there is no drawdown; None when the peak is never regained.
    """
    dd = drawdown(returns)
    if not len(dd) or dd.min() == 0:
        return 0
    trough = int(np.argmin(dd))
    recovered = np.flatnonzero(dd[trough:] >= 0)
    return int(recovered[0]) if len(recovered) else None


def calmar(returns: ArrayLike, periods: float) -> float:
    """Calmar ratio: CAGR / max drawdown over the whole series; nan without a drawdown."""
    mdd = max_drawdown(returns)
    return NAN if not mdd or math.isnan(mdd) else cagr(returns, periods) / mdd


def win_rate(outcomes: ArrayLike) -> float:
    """Share of winners among non-zero outcomes (trade P&L or bar returns); zeros are excluded
    as in quantstats; nan when every outcome is zero or there is none."""
    x = _values(outcomes)
    decided = int(np.count_nonzero(x))
    return float(np.count_nonzero(x > 0) / decided) if decided else NAN


def profit_factor(outcomes: ArrayLike) -> float:
    """Gross gains / gross losses; inf when there are gains but no loss, nan with neither."""
    x = _values(outcomes)
    gains, losses = float(x[x > 0].sum()), float(-x[x < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else NAN
    return gains / losses


def payoff_ratio(outcomes: ArrayLike) -> float:
    """Average winning outcome / |average losing outcome|; nan without wins or without losses."""
    x = _values(outcomes)
    wins, losses = x[x > 0], x[x < 0]
    if not len(wins) or not len(losses):
        return NAN
    return float(wins.mean() / -losses.mean())


def expectancy(outcomes: ArrayLike) -> float:
    """Average outcome per trade (win rate × average win + loss rate × average loss)."""
    x = _values(outcomes)
    return float(x.mean()) if len(x) else NAN


def turnover(traded_notional: float, average_equity: float) -> float:
    """Traded notional (both sides, every fill) divided by average equity; nan if equity ≤ 0."""
    return traded_notional / average_equity if average_equity > 0 else NAN


def time_in_market(exposure: ArrayLike) -> float:
    """Share of bars holding any position (gross exposure ≠ 0)."""
    x = _values(exposure)
    return float(np.count_nonzero(x) / len(x)) if len(x) else NAN


def average_exposure(exposure: ArrayLike) -> float:
    """Mean gross exposure (position notional / equity) over all bars, flat bars included."""
    x = _values(exposure)
    return float(np.abs(x).mean()) if len(x) else NAN


def rolling_sharpe(returns: pd.Series, window: int, periods: float) -> pd.Series:
    """Sharpe over a trailing window of ``window`` bars (rf = 0, annualised by sqrt(periods));
    nan during warm-up and where the window's returns are all identical."""
    rolling = returns.rolling(window)
    flat = (rolling.max() - rolling.min()) == 0
    out = rolling.mean() / rolling.std(ddof=1) * math.sqrt(periods)
    return out.mask(flat).rename("rolling_sharpe")


def rolling_window(periods: float, minimum: int = 20) -> int:
    """Default rolling-Sharpe window: about a quarter of a year of bars, at least ``minimum``."""
    return max(minimum, round(periods / 4))


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month (UTC): rows are years, columns months 1-12."""
    r = returns.dropna()
    if r.empty:
        return pd.DataFrame(columns=range(1, 13), dtype=float)
    index = pd.DatetimeIndex(r.index)
    grouped = (1.0 + r).groupby([index.year, index.month]).prod() - 1.0
    table = grouped.unstack()
    table.index.name, table.columns.name = "year", "month"
    return table.reindex(columns=range(1, 13))


def return_metrics(returns: ArrayLike, periods: float) -> dict[str, float | int | None]:
    """The return-series metrics (shared by strategy and benchmarks)."""
    return {
        "total_return": total_return(returns),
        "cagr": cagr(returns, periods),
        "volatility": volatility(returns, periods),
        "sharpe": sharpe(returns, periods),
        "sortino": sortino(returns, periods),
        "calmar": calmar(returns, periods),
        "max_drawdown": max_drawdown(returns),
        "max_drawdown_duration_bars": max_drawdown_duration(returns),
        "recovery_bars": recovery_bars(returns),
    }


def trade_metrics(trades: pd.DataFrame) -> dict[str, float | int]:
    """Trade statistics over closed trades; positions still open at the end are counted apart."""
    if trades.empty:
        trades = pd.DataFrame({"is_open": pd.Series(dtype=bool)})
    is_open = trades["is_open"].astype(bool).to_numpy()
    closed = trades.loc[~is_open]
    if closed.empty:
        closed = pd.DataFrame(
            {c: pd.Series(dtype=np.float64) for c in ("pnl", "return", "bars_held", "hours")}
        )
    else:
        held = pd.to_datetime(closed["exit_time"]) - pd.to_datetime(closed["entry_time"])
        closed = closed.assign(hours=held.dt.total_seconds() / 3600.0)
    pnl = closed["pnl"].to_numpy(dtype=np.float64)
    return {
        "trades": len(closed),
        "open_trades": int(is_open.sum()),
        "win_rate": win_rate(pnl),
        "profit_factor": profit_factor(pnl),
        "payoff_ratio": payoff_ratio(pnl),
        "expectancy": expectancy(pnl),
        "expectancy_pct": 100.0 * expectancy(closed["return"]),
        "avg_holding_bars": expectancy(closed["bars_held"]),
        "avg_holding_hours": expectancy(closed["hours"]),
    }


def _cost_metrics(result: BacktestResult, periods: float) -> dict[str, float]:
    """Fees, slippage, turnover and exposure of one run."""
    fills = result.fills
    notional = float((fills["qty"].abs() * fills["price"]).sum()) if len(fills) else 0.0
    years = len(result.equity) / periods if len(result.equity) else NAN
    total_turnover = turnover(notional, float(result.equity.mean()))
    fees, slippage = result.fees_paid, result.slippage_paid
    return {
        "fees_paid": fees,
        "slippage_paid": slippage,
        "costs_pct_of_initial": 100.0 * (fees + slippage) / result.initial_cash,
        "traded_notional": notional,
        "turnover": total_turnover,
        "turnover_annual": total_turnover / years if years else NAN,
        "avg_exposure": average_exposure(result.exposure),
        "time_in_market": time_in_market(result.exposure),
    }


def benchmark_returns(equity: pd.Series, initial_cash: float) -> pd.Series:
    """Bar returns of a benchmark equity curve started with ``initial_cash`` (same as strategy)."""
    return equity / equity.shift(1).fillna(initial_cash) - 1.0


def json_safe(value: Any) -> Any:
    """Recursively turn numpy scalars, timestamps and non-finite floats (→ None) into JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def compute_metrics(result: BacktestResult) -> dict[str, Any]:
    """Every metric of a run plus its benchmarks' return metrics, JSON-safe (undefined → null)."""
    periods = bars_per_year(result.timeframe, result.calendar)
    returns = result.returns
    equity = result.equity
    start, length = longest_underwater(returns)
    out: dict[str, Any] = {
        "name": result.name,
        "timeframe": result.timeframe,
        "calendar": result.calendar,
        "bars_per_year": periods,
        "zero_cost": result.zero_cost,
        "start": equity.index[0] if len(equity) else None,
        "end": equity.index[-1] if len(equity) else None,
        "bars": len(equity),
        "initial_cash": result.initial_cash,
        "final_equity": float(equity.iloc[-1]) if len(equity) else NAN,
        **return_metrics(returns, periods),
        "max_drawdown_duration_days": _span_days(equity.index, start, length),
        **trade_metrics(result.trades),
        **_cost_metrics(result, periods),
    }
    out["benchmarks"] = {
        name: {
            "final_equity": float(curve.iloc[-1]) if len(curve) else NAN,
            **return_metrics(benchmark_returns(curve, result.initial_cash), periods),
        }
        for name, curve in result.benchmarks.items()
    }
    return dict(json_safe(out))


def _span_days(index: pd.Index, start: int, length: int) -> float:
    """Calendar days from the last peak before bar ``start`` to the bar ending the run."""
    if length == 0:
        return 0.0
    times = pd.DatetimeIndex(index)
    first = times[start - 1] if start > 0 else times[0]
    last = times[min(start + length, len(times) - 1)]
    return float((last - first).total_seconds() / 86400)
