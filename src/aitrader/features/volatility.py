"""Volatility estimators (per bar, as a fraction of price) and a GARCH(1,1) forecast.

All values are per-bar (not annualised). The GARCH forecast is refitted with the ``arch`` package
on a fixed schedule anchored on the first bar, each fit using only a trailing window of past
returns; between refits the variance recursion runs forward with the fitted parameters.

:func:`garch_vol` computes the whole series at once; :class:`GarchFilter` produces the same
values one bar at a time (O(1) per bar between refits, the same fits on the same bars), so a
live process that keeps the filter between bars sees exactly the values the model was trained on
— recomputing ``garch_vol`` on a trailing window would move the refit schedule and the variance
seed, and give different numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
from arch import arch_model
from numba import njit

from aitrader.features._util import as_f64, log_returns, rolling_mean

_LN2 = math.log(2.0)


def realized_vol(close: np.ndarray, window: int = 20) -> np.ndarray:
    """Realised volatility: root mean square of log returns over ``window`` bars.

    Warm-up: ``window``.
    """
    r = log_returns(close)
    return np.sqrt(rolling_mean(r * r, window))


def parkinson(high: np.ndarray, low: np.ndarray, window: int = 20) -> np.ndarray:
    """Parkinson range volatility ``sqrt(mean(ln(H/L)^2) / (4 ln 2))``. Warm-up: ``window - 1``."""
    hl = np.log(as_f64(high) / as_f64(low))
    return np.sqrt(rolling_mean(hl * hl, window) / (4.0 * _LN2))


def garman_klass(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 20
) -> np.ndarray:
    """Garman–Klass volatility ``sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))``.

    Each term is ≥ 0 because ``|ln(C/O)| ≤ ln(H/L)``. Warm-up: ``window - 1``.
    """
    hl = np.log(as_f64(high) / as_f64(low))
    co = np.log(as_f64(close) / as_f64(open_))
    term = 0.5 * hl * hl - (2.0 * _LN2 - 1.0) * co * co
    return np.sqrt(np.maximum(rolling_mean(term, window), 0.0))


@njit(cache=True)
def _garch_filter(
    r: np.ndarray,
    fits: np.ndarray,
    params: np.ndarray,
    window: int,
    refit_every: int,
) -> np.ndarray:
    """One-step variance forecasts; segment ``j`` starts at ``fits[j]`` with ``params[j]``."""
    n = r.shape[0]
    out = np.full(n, np.nan)
    for j in range(fits.shape[0]):
        k = fits[j]
        omega, alpha, beta = params[j, 0], params[j, 1], params[j, 2]
        if not np.isfinite(omega):
            continue
        start = k - window + 1
        var = 0.0
        for i in range(start, k + 1):
            var += r[i] * r[i]
        var /= window
        stop = min(n, k + refit_every)
        for i in range(start, stop):
            var = omega + alpha * r[i] * r[i] + beta * var
            if i >= k:
                out[i] = math.sqrt(var)
    return out


@njit(cache=True)
def _garch_seed(r: np.ndarray, omega: float, alpha: float, beta: float) -> float:
    """The variance after a refit on ``r`` (the trailing window, NaN already 0): the same seed
    and recursion :func:`_garch_filter` runs at the start of a segment."""
    window = r.shape[0]
    var = 0.0
    for i in range(window):
        var += r[i] * r[i]
    var /= window
    for i in range(window):
        var = omega + alpha * r[i] * r[i] + beta * var
    return var


@njit(cache=True)
def garch_window_sigma(r: np.ndarray, omega: float, alpha: float, beta: float) -> np.ndarray:
    """σ after the segment-start recursion (:func:`_garch_seed`) over each row of ``r`` (rows ×
    bars, oldest first, NaN already 0): the volatility agent's per-row filter."""
    out = np.empty(r.shape[0])
    for i in range(r.shape[0]):
        out[i] = math.sqrt(_garch_seed(r[i], omega, alpha, beta))
    return out


def fit_garch(window_returns: np.ndarray) -> tuple[float, float, float]:
    """The GARCH(1,1) parameters ``(ω, α, β)`` of :func:`garch_vol` fitted on these returns
    (NaN when the fit fails)."""
    return _fit_garch(window_returns)


def _fit_garch(window_returns: np.ndarray) -> tuple[float, float, float]:
    """Fit a zero-mean GARCH(1,1) on standardised returns; ω rescaled back to return units."""
    scale = float(np.sqrt(np.mean(window_returns * window_returns)))
    if not np.isfinite(scale) or scale == 0.0:
        return (np.nan, np.nan, np.nan)
    model = arch_model(window_returns / scale, mean="Zero", vol="GARCH", p=1, q=1, rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.fit(disp="off", show_warning=False)
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return (np.nan, np.nan, np.nan)
    omega, alpha, beta = (float(v) for v in result.params.to_numpy()[:3])
    if not all(np.isfinite(v) for v in (omega, alpha, beta)):
        return (np.nan, np.nan, np.nan)
    return (omega * scale * scale, alpha, beta)


def garch_vol(close: np.ndarray, window: int = 1000, refit_every: int = 10_000) -> np.ndarray:
    """GARCH(1,1) one-step-ahead volatility forecast of the next bar's log return, known at the
    close of bar t.

    Refits happen at bars ``window, window + refit_every, ...`` on the returns of the trailing
    ``window`` bars (bars ≤ the refit bar only); the forecast then runs forward with those
    parameters until the next refit. A failed fit keeps the previous parameters (NaN before the
    first successful fit). Warm-up: ``window``.
    """
    r = log_returns(close)
    n = r.shape[0]
    fits = np.arange(window, n, refit_every, dtype=np.int64)
    params = np.full((fits.shape[0], 3), np.nan)
    last = (np.nan, np.nan, np.nan)
    for j, k in enumerate(fits):
        fitted = _fit_garch(r[k - window + 1 : k + 1])
        last = fitted if np.isfinite(fitted[0]) else last
        params[j] = last
    r_filled = np.where(np.isnan(r), 0.0, r)
    return np.asarray(_garch_filter(r_filled, fits, params, window, refit_every))


class GarchFilter:
    """:func:`garch_vol` one bar at a time, with identical values.

    Bars are counted from the first close given (the series origin, as in the batch function):
    a refit happens at bars ``window, window + refit_every, ...`` on the trailing ``window``
    returns; between refits each bar costs one variance update
    ``σ²_t = ω + α r_t² + β σ²_{t-1}``. Returns are computed with the batch code
    (:func:`log_returns` on the last two closes) so they match it bit for bit.
    """

    def __init__(self, window: int = 1000, refit_every: int = 10_000) -> None:
        if window < 2 or refit_every < 1:
            raise ValueError(
                f"GarchFilter: window ≥ 2 and refit_every ≥ 1, got {window}, {refit_every}"
            )
        self.window, self.refit_every = window, refit_every
        self.bars = 0  # closes seen since the origin
        self.value = math.nan  # the forecast known at the close of the last bar
        self._returns = np.full(window, np.nan)  # ring of the last ``window`` log returns
        self._prev = math.nan
        self._params = (math.nan, math.nan, math.nan)
        self._var = math.nan

    @classmethod
    def from_closes(
        cls, close: np.ndarray, window: int = 1000, refit_every: int = 10_000
    ) -> GarchFilter:
        """A filter that has seen ``close`` (its first value is the origin)."""
        out = cls(window, refit_every)
        values = as_f64(close)
        out.extend_returns(log_returns(values))
        if values.size:
            out._prev = float(values[-1])
        return out

    def update(self, close: float) -> float:
        """Take the next close; the forecast at this bar (NaN before the first good fit)."""
        r = math.nan
        if self.bars:
            r = float(log_returns(np.array([self._prev, close], dtype=np.float64))[1])
        self._prev = float(close)
        self.extend_returns((r,))
        return self.value

    def extend_returns(self, returns: Iterable[float]) -> None:
        """Advance over log returns (the first bar's is NaN), as :meth:`update` does."""
        window, every = self.window, self.refit_every
        for value in returns:
            r = float(value)
            t = self.bars
            self._returns[t % window] = r
            self.bars = t + 1
            if t >= window and (t - window) % every == 0:
                self._refit(t)
            elif self._var == self._var:
                rf = 0.0 if r != r else r
                omega, alpha, beta = self._params
                self._var = omega + alpha * rf * rf + beta * self._var
                self.value = math.sqrt(self._var)

    def _refit(self, t: int) -> None:
        """Fit on the returns of bars ``t - window + 1 .. t`` and restart the recursion."""
        pos = (t + 1) % self.window
        ordered = np.concatenate((self._returns[pos:], self._returns[:pos]))
        fitted = _fit_garch(ordered)
        self._params = fitted if np.isfinite(fitted[0]) else self._params
        omega, alpha, beta = self._params
        if not np.isfinite(omega):
            self._var = self.value = math.nan
            return
        filled = np.where(np.isnan(ordered), 0.0, ordered)
        self._var = float(_garch_seed(filled, omega, alpha, beta))
        self.value = math.sqrt(self._var)
