"""TCN agent: dilated causal convolutions (dilations 1, 2, 4, …) over the feature window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from aitrader.models.deep.base import SequenceModel, SequenceParams, sequence_kind
from aitrader.models.kinds import register

if TYPE_CHECKING:
    from optuna.trial import Trial


class TCNParams(SequenceParams):
    """Kernel and depth of the temporal blocks; the receptive field
    ``1 + 2 (kernel - 1) (2^levels - 1)`` must not exceed the window (no wasted padding)."""

    kernel: int = Field(3, ge=2, le=16)
    levels: int = Field(2, ge=1, le=10, description="temporal blocks, dilation doubling")

    @model_validator(mode="after")
    def _fits_window(self) -> TCNParams:
        field = 1 + 2 * (self.kernel - 1) * (2**self.levels - 1)
        if field > self.window:
            raise ValueError(
                f"receptive field {field} bars (kernel {self.kernel}, {self.levels} levels) "
                f"exceeds window {self.window}: lower levels/kernel or raise window"
            )
        return self


class TCNModel(SequenceModel):
    """Temporal convolutional network; the last step's channels → class probabilities."""

    net = "tcn"
    params_type = TCNParams


def search_space(trial: Trial) -> dict[str, Any]:
    """Width, depth, dropout and learning rate (window 64 holds every depth tried)."""
    return {
        "window": 64,
        "kernel": 3,
        "levels": trial.suggest_int("levels", 1, 4),
        "hidden": trial.suggest_int("hidden", 8, 64, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


register(
    sequence_kind(
        "tcn",
        "temporal convolutional network: dilated causal convolutions (PyTorch)",
        TCNModel,
        search_space,
    )
)
