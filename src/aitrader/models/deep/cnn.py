"""CNN pattern agent: causal 1-D convolutions over the window of OHLCV-derived feature rows,
read at the last bar and max-pooled over the window (a shape anywhere in it counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from aitrader.models.deep.base import SequenceModel, SequenceParams, sequence_kind
from aitrader.models.kinds import register

if TYPE_CHECKING:
    from optuna.trial import Trial


class CNNParams(SequenceParams):
    """Kernel width and the number of convolution layers."""

    kernel: int = Field(4, ge=2, le=64)
    layers: int = Field(2, ge=1, le=8)


class CNNModel(SequenceModel):
    """1-D convolutional pattern detector over windows of feature rows."""

    net = "cnn"
    params_type = CNNParams


def search_space(trial: Trial) -> dict[str, Any]:
    """Window, kernel, width, depth, dropout and learning rate for Optuna."""
    return {
        "window": trial.suggest_int("window", 8, 64, log=True),
        "kernel": trial.suggest_int("kernel", 2, 8),
        "hidden": trial.suggest_int("hidden", 8, 64, log=True),
        "layers": trial.suggest_int("layers", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


register(
    sequence_kind(
        "cnn", "1-D CNN pattern agent over causal feature windows (PyTorch)", CNNModel, search_space
    )
)
