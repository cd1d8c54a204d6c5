"""Overfitting statistics: probabilistic and deflated Sharpe ratios, PBO via CSCV.

References: Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier" (2012, PSR) and
"The Deflated Sharpe Ratio" (2014, DSR); Bailey, Borwein, López de Prado & Zhu, "The
Probability of Backtest Overfitting" (2017, CSCV). Sharpe ratios here are per period (not
annualised), matching the frequency of the returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

from aitrader.errors import ConfigError, DataError

EULER_GAMMA = 0.5772156649015329


def _moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 3:
        raise DataError(f"need at least 3 returns for a Sharpe ratio test, got {r.size}")
    sd = float(np.std(r, ddof=1))
    sr = 0.0 if sd == 0 else float(np.mean(r) / sd)
    skew = float(stats.skew(r)) if sd > 0 else 0.0
    kurt = float(stats.kurtosis(r, fisher=False)) if sd > 0 else 3.0
    return sr, skew, kurt, int(r.size)


def psr_from_stats(
    sr: float, benchmark: float, n: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > ``benchmark``) given an observed per-period Sharpe over ``n`` returns."""
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if n < 2 or variance <= 0:
        return math.nan
    z = (sr - benchmark) * math.sqrt(n - 1) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def probabilistic_sharpe(returns: np.ndarray, benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of a return series against a per-period benchmark Sharpe."""
    sr, skew, kurt, n = _moments(returns)
    return psr_from_stats(sr, benchmark, n, skew, kurt)


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected maximum Sharpe of ``n_trials`` unskilled trials whose Sharpes have ``variance``."""
    if n_trials < 1 or variance < 0:
        raise ConfigError("expected max Sharpe needs n_trials ≥ 1 and a variance ≥ 0")
    if n_trials == 1:
        return 0.0
    a = stats.norm.ppf(1.0 - 1.0 / n_trials)
    b = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(variance) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b))


def deflated_sharpe(returns: np.ndarray, n_trials: int, trial_sharpe_variance: float) -> float:
    """Deflated Sharpe ratio: the PSR against the Sharpe the best of ``n_trials`` would show
    by luck alone (trial Sharpes per period, same frequency as ``returns``)."""
    sr, skew, kurt, n = _moments(returns)
    benchmark = expected_max_sharpe(n_trials, trial_sharpe_variance)
    return psr_from_stats(sr, benchmark, n, skew, kurt)


@dataclass(frozen=True)
class PBOResult:
    """Probability of backtest overfitting and the logits behind it."""

    pbo: float
    logits: np.ndarray
    combinations: int


def _sharpes(block: np.ndarray) -> np.ndarray:
    sd = block.std(axis=0, ddof=1)
    mean = block.mean(axis=0)
    return np.divide(mean, sd, out=np.zeros_like(mean), where=sd > 0)


def pbo_cscv(returns: np.ndarray, splits: int = 16) -> PBOResult:
    """PBO by combinatorially symmetric cross-validation over a (T × N strategies) return matrix.

    For every half of the ``splits`` time blocks as in-sample: pick the best in-sample strategy
    and take the logit of its relative out-of-sample rank; PBO is the share of logits ≤ 0.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise DataError("PBO needs a 2-D matrix of returns with at least two strategies")
    if splits < 2 or splits % 2:
        raise ConfigError(f"PBO splits must be an even number ≥ 2, got {splits}")
    if matrix.shape[0] < 2 * splits:
        raise DataError(f"PBO: {matrix.shape[0]} rows is too few for {splits} splits")
    parts = np.array_split(np.arange(matrix.shape[0]), splits)
    n = matrix.shape[1]
    logits = []
    for chosen in combinations(range(splits), splits // 2):
        inside = np.concatenate([parts[i] for i in chosen])
        outside = np.setdiff1d(np.arange(matrix.shape[0]), inside)
        best = int(np.argmax(_sharpes(matrix[inside])))
        oos = _sharpes(matrix[outside])
        rank = stats.rankdata(oos)[best]
        omega = rank / (n + 1)
        logits.append(math.log(omega / (1.0 - omega)))
    values = np.asarray(logits)
    return PBOResult(float(np.mean(values <= 0)), values, len(values))
