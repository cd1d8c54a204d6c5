"""Volatility estimators (per bar, as a fraction of price) and a GARCH(1,1) forecast.

All values are per-bar (not annualised). The GARCH forecast is refitted with the ``arch`` package
on a fixed schedule anchored on the first bar, each fit using only a trailing window of past
returns; between refits the variance recursion runs forward with the fitted parameters.
"""

from __future__ import annotations

import math
import warnings

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
