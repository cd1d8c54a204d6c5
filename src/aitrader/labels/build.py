"""Labels the models learn: direction, forward returns, triple barrier and meta-labels.

Timing convention (ARCHITECTURE invariant 2): the decision for row ``t`` is taken at bar ``t``'s
close, so the label at ``t`` is about prices *after* that close, i.e. bars ``t+1 .. t+horizon``
(entry price ``close[t]``). Every result carries ``horizon`` (the most bars ahead any row looks)
and, per row, ``end_times``: the timestamp of the last bar that row's value depends on, so
validation can purge training rows whose label window ``[t, end_time]`` overlaps a test window and
embargo after it. A row whose window runs past the end of the data is NaN with ``end_time`` NaT —
never filled, never 0 — even when a triple barrier was touched before the data ran out (keeping
only early hits at the tail would bias the labels).

The label spec, :class:`LabelConfig`, lives in :mod:`aitrader.labels.config` (light to import) so
that the settings can hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import talib
from numba import njit

from aitrader.config import CostsConfig
from aitrader.errors import ConfigError, DataError
from aitrader.labels.config import LabelConfig

LabelKind = Literal[
    "direction3", "binary", "forward_return", "log_forward_return", "triple_barrier", "meta"
]
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


@dataclass(frozen=True, eq=False)
class Labels:
    """Label values indexed like the candles, with their horizon and per-row label-window end.

    ``values`` is a Series (direction, returns, meta) or, for the triple barrier, a DataFrame with
    columns ``barrier, ret, bars_held, hit_time, side``. ``end_times`` is NaT exactly where the row
    has no label.
    """

    values: pd.Series | pd.DataFrame
    horizon: int
    end_times: pd.Series
    name: str
    kind: LabelKind

    def __post_init__(self) -> None:
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise ConfigError(f"labels {self.name!r}: horizon must be an integer ≥ 1")
        if not self.values.index.equals(self.end_times.index):
            raise DataError(f"labels {self.name!r}: end_times must share the values' index")
        ends = self.end_times.dropna()
        if (pd.DatetimeIndex(ends) <= pd.DatetimeIndex(ends.index)).any():
            raise DataError(f"labels {self.name!r}: an end_time is not after its row's time")

    @property
    def target(self) -> pd.Series:
        """The column a model learns: ``barrier`` for the triple barrier, else the values."""
        if isinstance(self.values, pd.DataFrame):
            return self.values["barrier"]
        return self.values

    @property
    def mask(self) -> pd.Series:
        """True where the row has a label (its whole window lies inside the data)."""
        return self.end_times.notna()

    def dropna(self) -> Labels:
        """The same labels restricted to the rows that have one."""
        keep = self.mask.to_numpy()
        return replace(self, values=self.values.loc[keep], end_times=self.end_times.loc[keep])


# ---------------------------------------------------------------------------------------------
# Parameter and input checks


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_multiple(name: str, value: object) -> float:
    message = f"{name} must be a positive number of ATRs, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ConfigError(message)
    number = float(value)
    if not (np.isfinite(number) and number > 0):
        raise ConfigError(message)
    return number


def _neutral_band(neutral_band: float | None, costs: CostsConfig | None) -> float:
    if neutral_band is None:
        return (costs or CostsConfig()).round_trip
    if not np.isfinite(neutral_band) or not 0 <= neutral_band < 1:
        raise ConfigError(
            f"neutral_band must be a return in [0, 1) or None (= round-trip cost), "
            f"got {neutral_band!r}"
        )
    return float(neutral_band)


def _check_candles(candles: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(candles, pd.DataFrame):
        raise DataError(f"labels: candles must be a DataFrame, got {type(candles).__name__}")
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError("labels: candles must be indexed by a DatetimeIndex named 'timestamp'")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataError("labels: candle timestamps must be strictly increasing")
    missing = [c for c in columns if c not in candles.columns]
    if missing:
        raise DataError(f"labels: candles lack column(s) {', '.join(missing)}")
    for name in columns:
        values = candles[name].to_numpy(dtype="float64")
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"labels: row {i + 1} ({index[i].isoformat()}), field {name!r}: "
                f"{values[i]!r} is not a positive price"
            )


def _side_array(side: int | pd.Series, index: pd.Index, param: str) -> np.ndarray:
    """Per-bar side as float64 (+1 long, -1 short, 0 none) from a constant or a Series."""
    if isinstance(side, pd.Series):
        if not side.index.equals(index):
            raise DataError(f"{param}: index must equal the candles'/labels' index")
        values = side.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.flatnonzero(~np.isin(values, (-1.0, 0.0, 1.0)))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{param}: row {i + 1} ({index[i]}): {values[i]!r} is not a side; "
                "allowed: -1 (short), 0 (none), 1 (long)"
            )
        return values
    if not isinstance(side, bool) and side in (1, -1):
        return np.full(len(index), float(side))
    raise ConfigError(
        f"{param} must be 1 (long), -1 (short) or a Series of -1/0/1 per bar, got {side!r}"
    )


# ---------------------------------------------------------------------------------------------
# Fixed-horizon labels


def _forward_simple(close: np.ndarray, horizon: int) -> np.ndarray:
    out = np.full(close.shape, np.nan)
    if horizon < close.size:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def _fixed_horizon(
    values: np.ndarray, index: pd.DatetimeIndex, horizon: int, name: str, kind: LabelKind
) -> Labels:
    """Labels whose every row looks exactly ``horizon`` bars ahead."""
    return Labels(
        values=pd.Series(values, index=index, name=name),
        horizon=horizon,
        end_times=_fixed_end_times(index, horizon),
        name=name,
        kind=kind,
    )


def _fixed_end_times(index: pd.DatetimeIndex, horizon: int) -> pd.Series:
    return pd.Series(index, index=index, name="end_time").shift(-horizon)


def _close_and_index(candles: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
    _check_candles(candles, ("close",))
    return candles["close"].to_numpy(dtype="float64"), pd.DatetimeIndex(candles.index)


def forward_returns(candles: pd.DataFrame, horizon: int = 1, log: bool = False) -> Labels:
    """Return from ``close[t]`` to ``close[t+horizon]`` (simple, or natural log if ``log``)."""
    horizon = _check_int("horizon", horizon)
    close, index = _close_and_index(candles)
    simple = _forward_simple(close, horizon)
    values = np.log1p(simple) if log else simple
    name = f"fwd_{'log' if log else 'simple'}_ret_h{horizon}"
    return _fixed_horizon(
        values, index, horizon, name, "log_forward_return" if log else "forward_return"
    )


def direction_labels(
    candles: pd.DataFrame,
    horizon: int = 1,
    neutral_band: float | None = None,
    costs: CostsConfig | None = None,
) -> Labels:
    """3-class direction of ``r = close[t+h] / close[t] - 1``: +1 if r > band, -1 if r < -band.

    0 otherwise (``|r| <= band``). ``neutral_band`` None means the round-trip cost of ``costs``
    (default ``CostsConfig()``: fees + slippage on both legs).
    """
    horizon = _check_int("horizon", horizon)
    band = _neutral_band(neutral_band, costs)
    close, index = _close_and_index(candles)
    ret = _forward_simple(close, horizon)
    values = np.where(ret > band, 1.0, np.where(ret < -band, -1.0, 0.0))
    values[np.isnan(ret)] = np.nan
    name = f"direction3_h{horizon}_band{band:g}"
    return _fixed_horizon(values, index, horizon, name, "direction3")


def binary_labels(candles: pd.DataFrame, horizon: int = 1) -> Labels:
    """1 if ``close[t+horizon] > close[t]`` (up), else 0 (down or unchanged)."""
    horizon = _check_int("horizon", horizon)
    close, index = _close_and_index(candles)
    ret = _forward_simple(close, horizon)
    values = np.where(ret > 0, 1.0, 0.0)
    values[np.isnan(ret)] = np.nan
    name = f"binary_h{horizon}"
    return _fixed_horizon(values, index, horizon, name, "binary")


# ---------------------------------------------------------------------------------------------
# Triple barrier


@njit(cache=True)
def _first_touch(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    t: int,
    max_bars: int,
    side: float,
    barriers: tuple[float, float],
) -> tuple[float, float, int]:
    """(barrier, exit price, bar) of the first of ``barriers`` (take, stop) touched after ``t``;
    the stop wins ties."""
    take, stop = barriers
    for j in range(t + 1, t + max_bars + 1):
        if side * (open_[j] - stop) <= 0.0:
            return -1.0, open_[j], j
        if side * (open_[j] - take) >= 0.0:
            return 1.0, take, j
        worst = low[j] if side > 0 else high[j]
        best = high[j] if side > 0 else low[j]
        if side * (worst - stop) <= 0.0:
            return -1.0, stop, j
        if side * (best - take) >= 0.0:
            return 1.0, take, j
    j = t + max_bars
    return 0.0, close[j], j


@njit(cache=True)
def _scan_barriers(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    take_width: np.ndarray,
    stop_width: np.ndarray,
    side: np.ndarray,
    max_bars: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Barrier hit (+1/-1/0, NaN none), bars held and trade return for every row."""
    n = close.size
    barrier = np.full(n, np.nan)
    held = np.zeros(n, np.int64)
    ret = np.full(n, np.nan)
    for t in range(n - max_bars):
        s = side[t]
        if s == 0.0 or not (take_width[t] >= 0.0 and stop_width[t] >= 0.0):
            continue
        entry = close[t]
        hit, exit_price, j = _first_touch(
            open_,
            high,
            low,
            close,
            t,
            max_bars,
            s,
            (entry + s * take_width[t], entry - s * stop_width[t]),
        )
        barrier[t] = hit
        held[t] = j - t
        ret[t] = s * (exit_price / entry - 1.0)
    return barrier, held, ret


def _atr_values(candles: pd.DataFrame, atr: pd.Series | None, atr_period: int) -> np.ndarray:
    if atr is None:
        period = _check_int("atr_period", atr_period)
        h, lo, c = (candles[k].to_numpy(dtype="float64") for k in ("high", "low", "close"))
        return np.asarray(talib.ATR(h, lo, c, timeperiod=period), dtype="float64")
    if not isinstance(atr, pd.Series) or not atr.index.equals(candles.index):
        raise DataError("atr must be a Series with the candles' index")
    values = atr.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise DataError(f"atr: row {int(bad[0]) + 1}: {values[bad[0]]!r} is negative")
    return values


def _barrier_frame(
    index: pd.DatetimeIndex, scan: tuple[np.ndarray, np.ndarray, np.ndarray], sides: np.ndarray
) -> pd.DataFrame:
    barrier, held, ret = scan
    defined = ~np.isnan(barrier)
    hit_pos = np.arange(len(index)) + np.where(defined, held, 0)
    hit_time = pd.Series(index[hit_pos], index=index).where(defined)
    bars_held = pd.Series(held, index=index).astype("Int64").where(defined)
    return pd.DataFrame(
        {
            "barrier": barrier,
            "ret": ret,
            "bars_held": bars_held,
            "hit_time": hit_time,
            "side": sides,
        },
        index=index,
    )


def triple_barrier(
    candles: pd.DataFrame,
    *,
    take_profit: float = 2.0,
    stop_loss: float = 2.0,
    max_bars: int = 24,
    atr: pd.Series | None = None,
    atr_period: int = 14,
    side: int | pd.Series = 1,
) -> Labels:
    """Triple-barrier outcome of a trade entered at ``close[t]`` on ``side`` (+1 long, -1 short).

    Barriers sit ``take_profit``/``stop_loss`` × ATR[t] from the entry (ATR given, or TA-Lib ATR
    of ``atr_period``); the vertical barrier is ``max_bars`` bars. ``barrier`` is +1 take-profit
    (the upper barrier for a long), -1 stop-loss, 0 vertical. Within a bar: a gap through a barrier
    at the open hits it there (a stop fills at the worse open, a take-profit at its price); if both
    are inside one bar the stop (adverse) is taken as hit first. ``ret`` is the trade's gross
    simple return. Rows with side 0 or no ATR yet are NaN.
    """
    take = _check_multiple("take_profit", take_profit)
    stop = _check_multiple("stop_loss", stop_loss)
    max_bars = _check_int("max_bars", max_bars)
    _check_candles(candles, PRICE_COLUMNS)
    index = pd.DatetimeIndex(candles.index)
    widths = _atr_values(candles, atr, atr_period)
    sides = _side_array(side, index, "side")
    o, h, lo, c = (candles[k].to_numpy(dtype="float64") for k in PRICE_COLUMNS)
    scan = _scan_barriers(o, h, lo, c, widths * take, widths * stop, sides, max_bars)
    frame = _barrier_frame(index, scan, sides)
    which = "long" if (sides >= 0).all() else "short" if (sides <= 0).all() else "signals"
    name = f"triple_barrier_{which}_tp{take:g}_sl{stop:g}_h{max_bars}"
    return Labels(
        values=frame,
        horizon=max_bars,
        end_times=frame["hit_time"].rename("end_time"),
        name=name,
        kind="triple_barrier",
    )


# ---------------------------------------------------------------------------------------------
# Meta-labels


def _trade_returns(sides: np.ndarray, outcome: Labels) -> np.ndarray:
    if outcome.kind == "forward_return":
        return sides * outcome.target.to_numpy(dtype="float64")
    if outcome.kind != "triple_barrier":
        raise ConfigError(
            f"meta_labels needs an outcome with trade returns: kind 'triple_barrier' or "
            f"'forward_return' (simple); got {outcome.kind!r}"
        )
    frame = outcome.values
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"labels {outcome.name!r}: triple-barrier values must be a DataFrame")
    computed = frame["side"].to_numpy(dtype="float64")
    wrong = np.flatnonzero((sides != 0) & (computed != sides))
    if wrong.size:
        i = int(wrong[0])
        raise ConfigError(
            f"meta_labels: row {i + 1} ({frame.index[i]}): signal side {sides[i]:+g} but the "
            f"triple barrier was computed for side {computed[i]:+g}; compute it with side=signals"
        )
    return frame["ret"].to_numpy(dtype="float64")


def meta_labels(signals: pd.Series, outcome: Labels, costs: CostsConfig | None = None) -> Labels:
    """1 where the candidate trade (side from ``signals``) returned more than the round-trip cost.

    0 where it did not, NaN where there is no candidate (signal 0) or no outcome.
    """
    index = outcome.values.index
    sides = _side_array(signals, index, "signals")
    trade = _trade_returns(sides, outcome)
    cost = (costs or CostsConfig()).round_trip
    has = (sides != 0) & ~np.isnan(trade)
    values = np.where(has, np.where(trade > cost, 1.0, 0.0), np.nan)
    name = f"meta_{outcome.name}"
    return Labels(
        values=pd.Series(values, index=index, name=name),
        horizon=outcome.horizon,
        end_times=outcome.end_times.where(pd.Series(has, index=index)),
        name=name,
        kind="meta",
    )


# ---------------------------------------------------------------------------------------------
# Config and dispatcher


def make_labels(
    candles: pd.DataFrame, config: LabelConfig, costs: CostsConfig | None = None
) -> Labels:
    """Build the labels ``config`` describes; ``costs`` (default: realistic) sets the band."""
    if config.kind == "direction3":
        return direction_labels(candles, config.horizon, config.neutral_band, costs)
    if config.kind == "binary":
        return binary_labels(candles, config.horizon)
    if config.kind == "forward_return":
        return forward_returns(candles, config.horizon, log=config.log_returns)
    return triple_barrier(
        candles,
        take_profit=config.take_profit,
        stop_loss=config.stop_loss,
        max_bars=config.horizon,
        atr_period=config.atr_period,
        side=config.side,
    )
