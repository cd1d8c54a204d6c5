"""Calibration repairs a miscalibrated model (fit on one window, judged on the next)."""

from __future__ import annotations

import numpy as np
import pytest

from aitrader.errors import DataError
from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.validation.metrics import ece, log_loss


def overconfident(n: int, seed: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities from a softmax, reported sharpened (logits × 3): overconfident."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.6, (n, classes))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=p) for p in true])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    return sharp, y


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
@pytest.mark.parametrize("classes", [2, 3])
def test_calibration_improves_ece(method: str, classes: int) -> None:
    fit_p, fit_y = overconfident(4000, 0, classes)
    test_p, test_y = overconfident(4000, 1, classes)
    calibrator = ProbabilityCalibrator(method).fit(fit_p, fit_y)  # type: ignore[arg-type]
    calibrated = calibrator.transform(test_p)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert ece(test_y, calibrated) < 0.5 * ece(test_y, test_p)
    assert log_loss(test_y, calibrated) < log_loss(test_y, test_p)


def test_absent_class_gets_its_frequency() -> None:
    proba = np.tile([0.2, 0.3, 0.5], (10, 1))
    calibrator = ProbabilityCalibrator("isotonic").fit(proba, np.array([0, 2] * 5))
    out = calibrator.transform(proba)
    assert out[:, 1].max() < 1e-5  # class 1 never seen in the calibration window


def test_calibrator_checks_its_input() -> None:
    with pytest.raises(DataError):
        ProbabilityCalibrator().fit(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(DataError, match="not fitted"):
        ProbabilityCalibrator().transform(np.zeros((1, 2)))
