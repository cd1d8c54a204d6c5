"""A model bundle judged on rows it was not trained on: its calibrated p(win) (the probability
of the top class, "up") against what happened, from the bundle's own feature specs and label
definition. Also its feature importance, when the model kind has one. No Streamlit here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.models.registry import ModelBundle

WARMUP_BARS = 3000
"""Bars before the evaluated window that the features warm up on."""


@dataclass(frozen=True)
class Outcomes:
    """Per evaluated bar: the model's p(win) and whether the top class happened (``won``)."""

    rows: pd.DataFrame
    first: pd.Timestamp
    last: pd.Timestamp


def outcomes(
    bundle: ModelBundle, candles: pd.DataFrame, timeframe: str, settings: Settings
) -> Outcomes:
    """p(win) and the realised label on every bar after the bundle's training window (its
    calibration slice and any later bars of ``candles``)."""
    from aitrader.features.featureset import build_features
    from aitrader.labels.build import make_labels
    from aitrader.labels.config import ONLY_FOR, LabelConfig
    from aitrader.strategy.bundle import bundle_specs
    from aitrader.strategy.signals import direction_probabilities

    info = bundle.info
    kind = info.label.get("kind")  # the stored config lists every option: keep this kind's
    label = LabelConfig(**{k: v for k, v in info.label.items() if ONLY_FOR.get(k, kind) == kind})
    if label.kind == "forward_return":
        raise ConfigError("the bundle predicts a return, not classes: no p(win) to judge")
    after = pd.Timestamp(info.train_window[1])
    start = max(0, int(candles.index.searchsorted(after, side="right")) - WARMUP_BARS)
    window = candles.iloc[start:]
    features = build_features(window, bundle_specs(bundle), timeframe=timeframe).frame
    features = features.loc[features.index > after].dropna()
    if features.empty:
        raise ConfigError(f"the candles end before the bundle's training window does ({after})")
    p_up, _ = direction_probabilities(bundle.predictor.predict_proba(features), info.classes)
    values = make_labels(window, label, settings.costs).values
    realised = values["barrier"] if isinstance(values, pd.DataFrame) else values
    realised = realised.reindex(features.index)
    rows = pd.DataFrame({"p_win": p_up, "won": realised == info.classes[-1]}, features.index)
    rows = rows[realised.notna().to_numpy()]
    return Outcomes(rows, rows.index[0], rows.index[-1])


def calibration_table(rows: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Per equal-count bin of p(win): mean p(win), observed win rate, rows."""
    ranked = pd.qcut(rows["p_win"].rank(method="first"), bins, labels=False)
    grouped = rows.groupby(ranked)
    return pd.DataFrame(
        {
            "p_mean": grouped["p_win"].mean(),
            "win_rate": grouped["won"].mean(),
            "rows": grouped.size(),
        }
    ).reset_index(drop=True)


def coverage_table(rows: pd.DataFrame, steps: int = 41, min_rows: int = 30) -> pd.DataFrame:
    """For thresholds across p(win)'s range up to where fewer than ``min_rows`` bars reach them:
    the share of bars at or above each and their win rate."""
    p, won = rows["p_win"].to_numpy(), rows["won"].to_numpy()
    top = np.sort(p)[-min(min_rows, len(p))]
    thresholds = np.linspace(p.min(), top, steps)
    above = p[None, :] >= thresholds[:, None]
    count = above.sum(axis=1)
    wins = (above & won[None, :]).sum(axis=1)
    rate = np.divide(wins, count, out=np.full(steps, np.nan), where=count > 0)
    return pd.DataFrame({"threshold": thresholds, "coverage": count / len(p), "win_rate": rate})


def brier(rows: pd.DataFrame) -> float:
    return float(np.mean((rows["p_win"] - rows["won"].astype(float)) ** 2))


def feature_importance(bundle: ModelBundle) -> pd.Series | None:
    """Normalised importance per feature (gain for boosted trees, impurity for forests, mean
    |coefficient| on scaled features for linear models); None when the kind has none."""
    model = bundle.predictor.model
    names = list(bundle.predictor.feature_names)
    values: np.ndarray | None = None
    booster = getattr(model, "booster_", None)
    inner = getattr(model, "model_", None)
    if booster is not None and hasattr(booster, "feature_importance"):
        values = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    elif inner is not None and hasattr(inner, "feature_importances_"):
        values = np.asarray(inner.feature_importances_, dtype=float)
    elif inner is not None and hasattr(inner, "coef_"):
        values = np.abs(np.asarray(inner.coef_, dtype=float)).mean(axis=0)
    if values is None or len(values) != len(names) or not values.sum() > 0:
        return None
    return pd.Series(values / values.sum(), index=names, name="importance")
