"""Stress scenarios applied to a copy of the candles, and a side-by-side comparison of runs.

Every scenario keeps candles valid (positive prices, high ≥ max(open, close), low ≤ min(open,
close), volume ≥ 0) and is deterministic for a given ``seed``; the input frame is never modified.
Prices are changed by positive multiplicative factors, so a stressed path stays continuous
where the scenario does not break it on purpose (a gap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.analytics.metrics import max_drawdown, recovery_bars, total_return
from aitrader.engine.result import BacktestResult
from aitrader.errors import ConfigError, DataError

PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Scenario:
    """Stressed candles plus the broker changes the scenario asks for.

    ``spread_multiplier`` and ``min_spread_bps`` widen the simulated broker's spread for the
    whole run (see ``spread_bps``); ``window`` is the first and last stressed bar.
    """

    name: str
    candles: pd.DataFrame
    description: str
    window: tuple[pd.Timestamp, pd.Timestamp]
    spread_multiplier: float = 1.0
    min_spread_bps: float = 0.0
    volume_multiplier: float = 1.0

    def spread_bps(self, base_spread_bps: float) -> float:
        """Broker spread under this scenario: base × multiplier, at least ``min_spread_bps``."""
        return max(base_spread_bps * self.spread_multiplier, self.min_spread_bps)


def _checked(candles: pd.DataFrame, min_bars: int = 2) -> pd.DataFrame:
    """A float64 copy of the candle columns; DataError when columns or bars are missing."""
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in candles.columns]
    if missing:
        raise DataError(f"stress scenario: candles lack column(s) {', '.join(missing)}")
    if len(candles) < min_bars:
        raise DataError(f"stress scenario: needs at least {min_bars} bars, got {len(candles)}")
    return candles.astype({c: np.float64 for c in (*PRICE_COLUMNS, "volume")})


def _window(n: int, bars: int | None, start: int | None, seed: int) -> tuple[int, int]:
    """First and last bar (inclusive) of a stressed window of ``bars`` bars starting after bar 0;
    a random start (seeded) when ``start`` is None."""
    length = max(1, min(n - 1, bars if bars is not None else n - 1))
    if start is None:
        start = int(np.random.default_rng(seed).integers(1, n - length + 1))
    if not 1 <= start <= n - length:
        raise ConfigError(f"stress window start={start} with {length} bars does not fit {n} bars")
    return start, start + length - 1


def _scale(candles: pd.DataFrame, f_open: np.ndarray, f_close: np.ndarray) -> pd.DataFrame:
    """Multiply opens by ``f_open`` and closes by ``f_close``; highs/lows follow and are widened
    just enough to keep every bar valid."""
    o = candles["open"].to_numpy() * f_open
    c = candles["close"].to_numpy() * f_close
    h = np.maximum.reduce([candles["high"].to_numpy() * np.maximum(f_open, f_close), o, c])
    low = np.minimum.reduce([candles["low"].to_numpy() * np.minimum(f_open, f_close), o, c])
    return candles.assign(open=o, high=h, low=low, close=c)


def _times(candles: pd.DataFrame, lo: int, hi: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(candles.index[lo]), pd.Timestamp(candles.index[hi])


def flash_crash(
    candles: pd.DataFrame,
    depth: float = 0.3,
    recovery_bars: int = 24,
    at: int | None = None,
    seed: int = 0,
) -> Scenario:
    """Price falls by ``depth`` within bar ``at`` (random when None) and climbs back linearly,
    closing at the original path ``recovery_bars`` bars later; other bars are unchanged."""
    if not 0 < depth < 1 or recovery_bars < 0:
        raise ConfigError(
            f"flash crash: need 0 < depth < 1, recovery_bars ≥ 0 (got {depth}, {recovery_bars})"
        )
    data = _checked(candles, min_bars=recovery_bars + 2)
    lo, hi = _window(len(data), recovery_bars + 1, at, seed)
    f_close = np.ones(len(data))
    f_close[lo : hi + 1] = np.linspace(1 - depth, 1.0, recovery_bars + 1)
    f_open = np.concatenate([[1.0], f_close[:-1]])
    return Scenario(
        "flash-crash",
        _scale(data, f_open, f_close),
        f"{depth:.0%} crash, recovered over {recovery_bars} bars",
        _times(data, lo, hi),
    )


def low_liquidity(
    candles: pd.DataFrame,
    volume_factor: float = 0.1,
    spread_multiplier: float = 5.0,
    min_spread_bps: float = 10.0,
    bars: int | None = None,
    start: int | None = None,
    seed: int = 0,
) -> Scenario:
    """Volume scaled by ``volume_factor`` over ``bars`` bars (default: every bar) and the broker
    spread widened (the spread change applies to the whole run)."""
    if not 0 < volume_factor <= 1 or spread_multiplier < 1 or min_spread_bps < 0:
        raise ConfigError(
            "low liquidity: need 0 < volume_factor ≤ 1, spread_multiplier ≥ 1, min_spread_bps ≥ 0"
        )
    data = _checked(candles)
    lo, hi = (0, len(data) - 1) if bars is None else _window(len(data), bars, start, seed)
    volume = data["volume"].to_numpy().copy()
    volume[lo : hi + 1] *= volume_factor
    return Scenario(
        "low-liquidity",
        data.assign(volume=volume),
        f"volume × {volume_factor:g}, spread × {spread_multiplier:g} (≥ {min_spread_bps:g} bp)",
        _times(data, lo, hi),
        spread_multiplier=spread_multiplier,
        min_spread_bps=min_spread_bps,
        volume_multiplier=volume_factor,
    )


def gaps(candles: pd.DataFrame, count: int = 5, max_gap: float = 0.1, seed: int = 0) -> Scenario:
    """``count`` price gaps at random bars: the open jumps by ±(max_gap/2 … max_gap) against the
    previous close and every later price moves with it."""
    if count < 1 or not 0 < max_gap < 1:
        raise ConfigError(f"gaps: need count ≥ 1 and 0 < max_gap < 1 (got {count}, {max_gap})")
    data = _checked(candles, min_bars=count + 1)
    rng = np.random.default_rng(seed)
    where = np.sort(rng.choice(np.arange(1, len(data)), size=count, replace=False))
    sizes = rng.uniform(max_gap / 2, max_gap, count) * rng.choice([-1.0, 1.0], count)
    jumps = np.ones(len(data))
    jumps[where] = 1 + sizes
    factor = np.cumprod(jumps)
    return Scenario(
        "gap",
        _scale(data, factor, factor),
        f"{count} gaps of up to ±{max_gap:.0%}",
        _times(data, int(where[0]), int(where[-1])),
    )


def vol_spike(
    candles: pd.DataFrame,
    factor: float = 3.0,
    bars: int | None = None,
    start: int | None = None,
    seed: int = 0,
) -> Scenario:
    """Over a window (default a tenth of the data), log returns are scaled by ``factor`` around
    their window mean and intrabar ranges by the same factor; later bars follow the new level."""
    if not 0 < factor <= 10:
        raise ConfigError(f"vol spike: need 0 < factor ≤ 10 (got {factor})")
    data = _checked(candles, min_bars=3)
    lo, hi = _window(len(data), bars or max(2, len(data) // 10), start, seed)
    close = data["close"].to_numpy()
    log_ret = np.diff(np.log(close[lo - 1 : hi + 1]))
    stressed = log_ret.mean() + factor * (log_ret - log_ret.mean())
    new_close = close[lo - 1] * np.exp(np.cumsum(stressed))
    out = data.copy()
    for column in ("open", "high", "low"):
        ratio = data[column].to_numpy()[lo : hi + 1] / close[lo : hi + 1]
        out.iloc[lo : hi + 1, out.columns.get_loc(column)] = new_close * ratio**factor
    out.iloc[lo : hi + 1, out.columns.get_loc("close")] = new_close
    level = new_close[-1] / close[hi]
    out.iloc[hi + 1 :, [out.columns.get_loc(c) for c in PRICE_COLUMNS]] *= level
    return Scenario(
        "vol-spike", out, f"volatility × {factor:g} over {hi - lo + 1} bars", _times(data, lo, hi)
    )


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "flash-crash": flash_crash,
    "low-liquidity": low_liquidity,
    "gap": gaps,
    "vol-spike": vol_spike,
}


def make_scenario(name: str, candles: pd.DataFrame, seed: int = 0, **params: Any) -> Scenario:
    """Build the named scenario (``flash-crash``, ``low-liquidity``, ``gap``, ``vol-spike``)."""
    try:
        build = SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}"
        ) from None
    return build(candles, seed=seed, **params)


def _orders(fills: pd.DataFrame) -> tuple[int, int]:
    """(orders with any fill, orders filled across more than one bar) from the fills table."""
    if fills.empty:
        return 0, 0
    bars_per_order = fills.groupby("client_order_id")["time"].nunique()
    return len(bars_per_order), int((bars_per_order > 1).sum())


def scenario_row(result: BacktestResult, ruin_floor: float) -> dict[str, Any]:
    """Survival, drawdown, recovery and fill counts of one run."""
    returns = result.returns
    floor = ruin_floor * result.initial_cash
    orders, split = _orders(result.fills)
    return {
        "final_equity": float(result.equity.iloc[-1]) if len(result.equity) else float("nan"),
        "total_return": total_return(returns),
        "max_drawdown": max_drawdown(returns),
        "ruined": bool((result.equity <= floor).any()),
        "recovery_bars": recovery_bars(returns),
        "trades": len(result.trades),
        "fills": len(result.fills),
        "orders_filled": orders,
        "orders_split": split,
    }


def compare_scenarios(
    base: BacktestResult, stressed: Mapping[str, BacktestResult], ruin_floor: float = 0.5
) -> pd.DataFrame:
    """One row per run, the unstressed ``base`` first.

    ``ruined``: equity touched ``ruin_floor`` × initial cash or less at some bar.
    ``recovery_bars``: bars from the deepest trough back to the peak before it (None: never).
    ``orders_split``: orders whose fills spread over several bars (partial fills at the volume
    cap). ``fills_missed``: orders the base run filled beyond this run's count (0 for base).
    """
    if not 0 <= ruin_floor < 1:
        raise ConfigError(f"ruin_floor must be in [0, 1), got {ruin_floor}")
    rows = {"base": scenario_row(base, ruin_floor)}
    rows.update({name: scenario_row(run, ruin_floor) for name, run in stressed.items()})
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["fills_missed"] = (rows["base"]["orders_filled"] - table["orders_filled"]).clip(lower=0)
    recovery = {name: row["recovery_bars"] for name, row in rows.items()}
    table["recovery_bars"] = pd.Series(recovery, dtype="object")
    table.index.name = "scenario"
    return table
