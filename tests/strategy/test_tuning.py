"""Threshold tuning on validation data: the lowest threshold reaching the target win rate."""

from __future__ import annotations

import numpy as np
import pytest

from aitrader.strategy.config import SignalConfig
from aitrader.strategy.signals import resolve, tune_thresholds, with_tuned


def validation_set() -> tuple[np.ndarray, np.ndarray]:
    """30 rows: p = 0.52 (4/10 up), 0.58 (7/10 up), 0.66 (9/10 up)."""
    p = np.repeat([0.52, 0.58, 0.66], 10)
    wins = (4, 7, 9)
    y = np.concatenate([np.r_[np.ones(w), -np.ones(10 - w)] for w in wins])
    return p, y


def test_target_reached_with_maximum_coverage() -> None:
    p, y = validation_set()
    tuned = tune_thresholds(p, y, target_win_rate=0.75, min_trades=5)
    assert tuned.long_threshold == pytest.approx(0.53)  # keeps the 0.58 and 0.66 rows
    assert tuned.long_win_rate == pytest.approx(16 / 20)
    assert tuned.long_coverage == pytest.approx(20 / 30)
    stricter = tune_thresholds(p, y, target_win_rate=0.85, min_trades=5)
    assert stricter.long_threshold == pytest.approx(0.59)
    assert stricter.long_coverage == pytest.approx(10 / 30)
    loose = tune_thresholds(p, y, target_win_rate=0.6, min_trades=5)
    assert loose.long_threshold == pytest.approx(0.5) and loose.long_coverage == 1.0


def test_unreachable_target_disables_the_side() -> None:
    p, y = validation_set()
    tuned = tune_thresholds(p, y, target_win_rate=0.95, min_trades=5)
    assert tuned.long_threshold is None and tuned.short_threshold is None
    override = tuned.as_override()
    assert override.allow_long is False and override.allow_short is False


def test_min_trades_guards_against_tiny_samples() -> None:
    p, y = validation_set()
    assert tune_thresholds(p, y, target_win_rate=0.85, min_trades=11).long_threshold is None


def test_short_side_uses_down_outcomes() -> None:
    p, y = validation_set()
    tuned = tune_thresholds(1.0 - p, -y, target_win_rate=0.75, min_trades=5)
    assert tuned.short_threshold == pytest.approx(0.53)
    assert tuned.long_threshold is None


def test_tuned_thresholds_become_a_symbol_timeframe_override() -> None:
    p, y = validation_set()
    tuned = tune_thresholds(p, y, target_win_rate=0.75, min_trades=5)
    config = with_tuned(SignalConfig(), "BTC/USDT", "1h", tuned)
    params = resolve(config, "BTC/USDT", "1h")
    assert params.long_threshold == pytest.approx(0.53)
    assert params.allow_short is False
    assert resolve(config, "BTC/USDT", "4h").long_threshold == 0.55
    assert tuned.model_dump()["samples"] == 30  # serialisable into the model bundle
