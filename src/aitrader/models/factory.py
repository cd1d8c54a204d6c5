"""Build a model from its configuration."""

from __future__ import annotations

from aitrader.models.base import ClassifierBase
from aitrader.models.baselines import MajorityModel, PersistenceModel
from aitrader.models.config import ModelConfig, ModelKind
from aitrader.models.forest import RandomForestModel
from aitrader.models.gbm import LightGBMModel
from aitrader.models.linear import LogisticModel
from aitrader.models.xgb import XGBoostModel

UNSCALED: frozenset[ModelKind] = frozenset({"majority", "persistence"})
"""Kinds that read raw feature values (persistence needs the true sign of the last return)."""


def make_model(config: ModelConfig) -> ClassifierBase:
    """An unfitted model of ``config.kind`` with its parameters and seed."""
    if config.kind == "lightgbm":
        return LightGBMModel(config.lightgbm, seed=config.seed, n_jobs=config.n_jobs)
    if config.kind == "random_forest":
        return RandomForestModel(config.random_forest, seed=config.seed, n_jobs=config.n_jobs)
    if config.kind == "logistic":
        return LogisticModel(config.logistic, seed=config.seed)
    if config.kind == "xgboost":
        return XGBoostModel(config.xgboost, seed=config.seed, n_jobs=config.n_jobs)
    if config.kind == "persistence":
        return PersistenceModel(config.persistence_column)
    return MajorityModel()


def uses_scaler(config: ModelConfig) -> bool:
    """Whether the pipeline should scale features before this model."""
    return config.scaler != "none" and config.kind not in UNSCALED
