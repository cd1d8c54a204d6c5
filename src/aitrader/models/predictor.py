"""A fitted prediction chain: scaler → model → calibrator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.errors import DataError
from aitrader.features.scaling import FeatureScaler
from aitrader.models.base import ClassifierBase
from aitrader.models.calibration import ProbabilityCalibrator


def align_proba(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Model columns placed under the full class list (classes unseen in training get 0)."""
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, np.searchsorted(classes, model_classes)] = proba
    return out


@dataclass(frozen=True)
class Predictor:
    """Everything fitted on a training window, applied unchanged to later rows."""

    feature_names: tuple[str, ...]
    classes: np.ndarray
    model: ClassifierBase
    scaler: FeatureScaler | None
    calibrator: ProbabilityCalibrator | None

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        if tuple(str(c) for c in X.columns) != self.feature_names:
            raise DataError(
                "feature columns differ from the ones the model was trained on "
                f"({len(X.columns)} given, {len(self.feature_names)} expected)"
            )
        return X if self.scaler is None else self.scaler.transform(X)

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probabilities over ``classes``."""
        proba = self.model.predict_proba(self._matrix(X))
        return align_proba(proba, self.model.classes_, self.classes)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities over ``classes``."""
        raw = self.raw_proba(X)
        return raw if self.calibrator is None else self.calibrator.transform(raw)

    def proba_at(self, X: pd.DataFrame, rows: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Probabilities of the rows of ``X`` at positions ``rows``, each given the model's
        ``context_rows`` earlier rows of ``X`` as input (a sequence model's window)."""
        predict = self.predict_proba if calibrated else self.raw_proba
        context = self.model.context_rows
        if context == 0 or rows.size == 0:
            return predict(X.iloc[rows])
        lo, hi = max(0, int(rows.min()) - context), int(rows.max()) + 1
        return predict(X.iloc[lo:hi])[rows - lo]
