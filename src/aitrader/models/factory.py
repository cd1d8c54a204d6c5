"""Build a model from its configuration, through the kind registry."""

from __future__ import annotations

from aitrader.models.base import ClassifierBase
from aitrader.models.config import ModelConfig
from aitrader.models.kinds import get


def make_model(config: ModelConfig) -> ClassifierBase:
    """An unfitted model of ``config.kind`` with its parameters and seed."""
    model: ClassifierBase = get(config.kind).build(config.params(), config.seed, config.n_jobs)
    return model


def uses_scaler(config: ModelConfig) -> bool:
    """Whether the pipeline should scale features before this model (raw-feature kinds, such as
    persistence, which needs the true sign of the last return, are never scaled)."""
    return config.scaler != "none" and not get(config.kind).raw_features
