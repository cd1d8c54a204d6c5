"""Metrics against hand-computed values (trading P&L comes from the engine, tested there)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aitrader.errors import DataError
from aitrader.validation import metrics as m

PROBA = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
Y = np.array([0, 1, 1, 1])


def test_classification_values_by_hand() -> None:
    assert m.accuracy(Y, PROBA) == 0.75
    expected_ll = -(math.log(0.8) + math.log(0.7) + math.log(0.4) + math.log(0.9)) / 4
    assert m.log_loss(Y, PROBA) == pytest.approx(expected_ll)
    # Brier: sum over both classes of squared errors, averaged
    assert m.brier(Y, PROBA) == pytest.approx((0.08 + 0.18 + 0.72 + 0.02) / 4)
    climatology = np.tile([0.25, 0.75], (4, 1))
    assert m.brier(Y, climatology) == pytest.approx((2 * 0.75**2 + 3 * 2 * 0.25**2) / 4)
    assert m.brier_skill(Y, PROBA, climatology) == pytest.approx(1 - 0.25 / 0.375)
    assert m.balanced_accuracy(Y, PROBA) == pytest.approx((1.0 + 2 / 3) / 2)
    assert m.auc(Y, PROBA) == 1.0  # the only negative scores below every positive


def test_ece_and_reliability_by_hand() -> None:
    curve = m.reliability(Y, PROBA, bins=5)
    assert curve["count"].tolist() == [0, 0, 1, 2, 1]
    # (0.4, 0.6]: 0.6 wrong; (0.6, 0.8]: 0.8 and 0.7 right; (0.8, 1]: 0.9 right
    assert m.ece(Y, PROBA, bins=5) == pytest.approx((0.6 + 2 * 0.25 + 0.1) / 4)


def test_encode_refuses_unknown_classes() -> None:
    classes = np.array([-1.0, 0.0, 1.0])
    assert m.encode(np.array([1.0, -1.0, 0.0]), classes).tolist() == [2, 0, 1]
    with pytest.raises(DataError, match="outside"):
        m.encode(np.array([2.0]), classes)


def test_sharpe_annualises() -> None:
    r = np.array([0.01, 0.02, 0.0, -0.01])
    per_bar = np.mean(r) / np.std(r, ddof=1)
    assert m.sharpe(r) == pytest.approx(per_bar)
    assert m.sharpe(r, 365) == pytest.approx(per_bar * math.sqrt(365))
    assert m.sharpe(np.zeros(10)) == 0.0
