"""The unit of every metric, and the one formatter that tables (CLI and HTML) print them with.

Rule for names in ``metrics.json``: a name ending in ``_pct`` holds a percent (25.4 means 25.4 %);
returns, drawdowns, rates and exposures without that suffix are fractions (0.254 means 25.4 %);
money is in the quote currency of the run.
"""

from __future__ import annotations

import math
from typing import Any

KINDS: dict[str, str] = {
    "initial_cash": "money",
    "final_equity": "money",
    "total_return": "fraction",
    "cagr": "fraction",
    "volatility": "fraction",
    "sharpe": "ratio",
    "sortino": "ratio",
    "calmar": "ratio",
    "max_drawdown": "fraction",
    "max_drawdown_duration_bars": "int",
    "max_drawdown_duration_days": "num",
    "bars": "int",
    "bars_per_year": "num",
    "trades": "int",
    "open_trades": "int",
    "fills": "int",
    "orders_filled": "int",
    "orders_split": "int",
    "fills_missed": "int",
    "recovery_bars": "int",
    "win_rate": "fraction",
    "profit_factor": "ratio",
    "payoff_ratio": "ratio",
    "expectancy": "money",
    "expectancy_pct": "percent",
    "avg_holding_bars": "num",
    "avg_holding_hours": "num",
    "turnover": "num",
    "turnover_annual": "num",
    "avg_exposure": "fraction",
    "time_in_market": "fraction",
    "fees_paid": "money",
    "slippage_paid": "money",
    "costs_pct_of_initial": "percent",
    "traded_notional": "money",
    "pnl": "money",  # trade columns
    "return": "fraction",
    "fees": "money",
    "slippage": "money",
}

_FORMATS = {
    "fraction": "{:,.2%}",
    "percent": "{:,.2f} %",
    "money": "{:,.2f}",
    "ratio": "{:,.3f}",
    "num": "{:,.1f}",
    "int": "{:,.0f}",
}


def format_value(value: Any, kind: str) -> str:
    """One table cell; undefined values (None, NaN) show as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return _FORMATS[kind].format(value)


def format_metric(name: str, value: Any) -> str:
    """``value`` formatted by the unit of metric ``name`` (unknown names: 4 significant digits)."""
    kind = KINDS.get(name)
    if kind is None:
        return format_value(value, "num") if isinstance(value, int) else _general(value)
    return format_value(value, kind)


def _general(value: Any) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:,.4g}"
    return format_value(value, "num")
