"""PSR and DSR against hand-computed and published values; PBO high on noise, low on skill."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aitrader.errors import ConfigError
from aitrader.validation.overfitting import (
    deflated_sharpe,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe,
    psr_from_stats,
)


def test_psr_by_hand() -> None:
    # SR 0.1 per period over 253 returns, normal: z = 0.1 * sqrt(252) / sqrt(1 + 2 * 0.01 / 4)
    z = 0.1 * math.sqrt(252) / math.sqrt(1 + 0.5 * 0.01)
    assert psr_from_stats(0.1, 0.0, 253) == pytest.approx(stats.norm.cdf(z))
    assert psr_from_stats(0.0, 0.0, 100) == pytest.approx(0.5)


def test_psr_of_a_series_uses_its_moments() -> None:
    r = np.random.default_rng(0).standard_t(5, 2000) * 0.01 + 0.0005
    sr = np.mean(r) / np.std(r, ddof=1)
    expected = psr_from_stats(sr, 0.0, r.size, stats.skew(r), stats.kurtosis(r, fisher=False))
    assert probabilistic_sharpe(r) == pytest.approx(expected)


def test_deflated_sharpe_matches_bailey_lopez_de_prado_example() -> None:
    """The DSR paper's numerical example: 100 trials, variance of annualised trial Sharpes 0.5,
    best annualised SR 2.5 on 5 years of daily returns (T = 1250), skew -3, kurtosis 10:
    E[max SR] ≈ 0.1132 (daily) and DSR ≈ 0.9004."""
    benchmark = expected_max_sharpe(100, 0.5 / 250)
    assert benchmark == pytest.approx(0.1132, abs=5e-4)
    dsr = psr_from_stats(2.5 / math.sqrt(250), benchmark, 1250, skew=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_deflated_sharpe_falls_with_more_trials() -> None:
    r = np.random.default_rng(1).normal(0.001, 0.01, 1000)
    one = deflated_sharpe(r, 1, 0.0)
    assert one == pytest.approx(probabilistic_sharpe(r))
    assert deflated_sharpe(r, 10, 0.002) > deflated_sharpe(r, 1000, 0.002)
    with pytest.raises(ConfigError):
        expected_max_sharpe(0, 1.0)


def test_pbo_is_high_for_pure_noise_and_low_for_real_skill() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 0.01, (2000, 20))
    assert pbo_cscv(noise, splits=10).pbo > 0.3
    skilled = noise.copy()
    skilled[:, 7] += 0.004  # one strategy has a persistent edge
    result = pbo_cscv(skilled, splits=10)
    assert result.pbo < 0.05
    assert result.combinations == math.comb(10, 5)
