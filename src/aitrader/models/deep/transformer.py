"""Transformer agent: a small encoder with causal self-attention over the feature window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from aitrader.models.deep.base import SequenceModel, SequenceParams, sequence_kind
from aitrader.models.kinds import register

if TYPE_CHECKING:
    from optuna.trial import Trial


class TransformerParams(SequenceParams):
    """Heads and encoder layers; ``hidden`` (the model width) must divide by ``heads``."""

    heads: int = Field(2, ge=1, le=32)
    layers: int = Field(1, ge=1, le=12, description="encoder layers")

    @model_validator(mode="after")
    def _width_splits(self) -> TransformerParams:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        return self


class TransformerModel(SequenceModel):
    """Causal Transformer encoder; the last position's state → class probabilities."""

    net = "transformer"
    params_type = TransformerParams


def search_space(trial: Trial) -> dict[str, Any]:
    """Window, width, depth, dropout and learning rate (4 heads)."""
    return {
        "window": trial.suggest_int("window", 8, 64, log=True),
        "hidden": 8 * trial.suggest_int("hidden_x8", 2, 8),
        "heads": 4,
        "layers": trial.suggest_int("layers", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


register(
    sequence_kind(
        "transformer",
        "small Transformer encoder with causal attention (PyTorch)",
        TransformerModel,
        search_space,
    )
)
