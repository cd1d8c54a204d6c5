"""Stops: hand-computed fixed %, ATR, trailing, break-even and time stops."""

from __future__ import annotations

import numpy as np
import pytest

from aitrader.risk.stops import (
    atr_stop,
    break_even_stop,
    fixed_pct_stop,
    stop_fill,
    stop_hit,
    time_stop,
    trailing_stop,
)


def test_fixed_and_atr_stops_sit_on_the_losing_side() -> None:
    assert fixed_pct_stop(100.0, 1, 0.02) == pytest.approx(98.0)
    assert fixed_pct_stop(100.0, -1, 0.02) == pytest.approx(102.0)
    assert atr_stop(100.0, 1, 2.0, 1.5) == pytest.approx(97.0)
    assert atr_stop(100.0, -1, 2.0, 1.5) == pytest.approx(103.0)


def test_trailing_stop_ratchets_and_never_loosens() -> None:
    assert trailing_stop(97.0, 1, 110.0, 2.0, 2.0) == pytest.approx(106.0)
    assert trailing_stop(97.0, 1, 100.0, 2.0, 2.0) == pytest.approx(97.0)
    assert trailing_stop(103.0, -1, 90.0, 2.0, 2.0) == pytest.approx(94.0)
    assert trailing_stop(103.0, -1, 101.0, 2.0, 2.0) == pytest.approx(103.0)


def test_break_even_after_tp1() -> None:
    assert break_even_stop(97.0, 1, 100.0) == pytest.approx(100.0)
    assert break_even_stop(97.0, 1, 100.0, offset=0.001) == pytest.approx(100.1)
    assert break_even_stop(105.0, 1, 100.0) == pytest.approx(105.0)  # already tighter
    assert break_even_stop(103.0, -1, 100.0) == pytest.approx(100.0)


def test_stop_hit_and_gap_fill() -> None:
    assert bool(stop_hit(1, 96.5, 101.0, 97.0))
    assert not bool(stop_hit(1, 97.5, 101.0, 97.0))
    assert bool(stop_hit(-1, 99.0, 103.0, 103.0))
    assert stop_fill(1, 95.0, 97.0) == 95.0  # gapped through: filled at the open
    assert stop_fill(1, 99.0, 97.0) == 97.0
    assert stop_fill(-1, 105.0, 103.0) == 105.0


def test_time_stop() -> None:
    assert bool(time_stop(5, 5))
    assert not bool(time_stop(4, 5))
    assert not bool(time_stop(1000, 0))
    np.testing.assert_array_equal(time_stop(np.array([1, 2, 3]), 2), [False, True, True])
