"""LSTM direction agent: a recurrent net over the causal window of feature rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from aitrader.models.deep.base import SequenceModel, SequenceParams, sequence_kind
from aitrader.models.kinds import register

if TYPE_CHECKING:
    from optuna.trial import Trial


class LSTMParams(SequenceParams):
    """LSTM size on top of the shared sequence parameters."""

    layers: int = Field(1, ge=1, le=8, description="stacked LSTM layers")


class LSTMModel(SequenceModel):
    """LSTM over windows of feature rows; the last hidden state → class probabilities."""

    net = "lstm"
    params_type = LSTMParams


def search_space(trial: Trial) -> dict[str, Any]:
    """Window, width, depth, dropout and learning rate for Optuna."""
    return {
        "window": trial.suggest_int("window", 8, 64, log=True),
        "hidden": trial.suggest_int("hidden", 8, 64, log=True),
        "layers": trial.suggest_int("layers", 1, 2),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


register(
    sequence_kind(
        "lstm", "LSTM over causal windows of feature rows (PyTorch)", LSTMModel, search_space
    )
)
