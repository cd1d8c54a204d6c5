"""A fitted prediction chain: scaler → model → calibrator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def transform(self, X: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        """The rows the model reads: columns checked, scaled when the chain has a scaler."""
        if tuple(str(c) for c in X.columns) != self.feature_names:
            raise DataError(
                "feature columns differ from the ones the model was trained on "
                f"({len(X.columns)} given, {len(self.feature_names)} expected)"
            )
        return X if self.scaler is None else self.scaler.transform(X)

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probabilities over ``classes``."""
        proba = self.model.predict_proba(self.transform(X))
        return align_proba(proba, self.model.classes_, self.classes)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities over ``classes``."""
        return self._calibrated(self.raw_proba(X))

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.calibrator is None else self.calibrator.transform(raw)

    def predict_explained(self, X: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
        """Calibrated probabilities and why, for the last row: its probabilities by class name
        and, from a model that explains itself (the meta-agent: ``combine`` + ``explain``),
        each agent's view and weight, the disagreement and the gate; from a model with named
        outputs (``aitrader.models.agents``: an interval, a regime, a range), their last row."""
        combine = getattr(self.model, "combine", None)
        details: dict[str, Any] = {}
        if combine is None:
            proba = self.predict_proba(X)
        else:
            output = combine(self.transform(X))
            proba = self._calibrated(align_proba(output.proba, self.model.classes_, self.classes))
            details = self.model.explain(output)  # type: ignore[attr-defined]
        names = class_names(self.classes)
        probabilities = dict(zip(names, map(float, proba[-1]), strict=True))
        from aitrader.models.agents import agent_outputs  # agents imports this module

        last = agent_outputs(self, X.iloc[-1:])
        if len(last.columns):
            details["outputs"] = {str(k): float(v) for k, v in last.iloc[-1].items()}
        return proba, {"probabilities": probabilities} | details

    def proba_at(self, X: pd.DataFrame, rows: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Probabilities of the rows of ``X`` at positions ``rows``, each given the model's
        ``context_rows`` earlier rows of ``X`` as input (a sequence model's window)."""
        predict = self.predict_proba if calibrated else self.raw_proba
        context = self.model.context_rows
        if context == 0 or rows.size == 0:
            return predict(X.iloc[rows])
        lo, hi = max(0, int(rows.min()) - context), int(rows.max()) + 1
        return predict(X.iloc[lo:hi])[rows - lo]


def class_names(classes: np.ndarray) -> list[str]:
    """down / flat / up for signed labels, down / up for 0/1 labels, else the values."""
    values = [float(c) for c in classes]
    if values == [-1.0, 0.0, 1.0]:
        return ["down", "flat", "up"]
    if values in ([0.0, 1.0], [-1.0, 1.0]):
        return ["down", "up"]
    return [f"{v:g}" for v in values]
