"""The live model's quality on realised outcomes (``/ml-metrics``), next to its backtest figures.

Each decision the model strategy records carries its calibrated class probabilities and the
bar's close. Once ``horizon`` more bars of the same symbol are recorded, the decision's outcome
is known: the label the model was trained on (``direction3``: up/flat/down beyond the neutral
band; ``binary``: up or not) of the close ``horizon`` bars later. Hit rate (accuracy of the most
probable class), Brier score and the top-label reliability curve with its ECE are then computed
with the same functions as the out-of-sample evaluation (:mod:`aitrader.validation.metrics`),
over the latest ``rolling`` decisions, and shown beside the figures stored in the bundle by the
retrain gate's walk-forward evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.live.ledger import DRIFT, Ledger
from aitrader.models.predictor import class_names

BACKTEST = ("accuracy", "brier", "ece", "net_sharpe", "dsr")
"""The bundle's walk-forward figures shown beside the live ones (accuracy = hit rate)."""


@dataclass(frozen=True)
class MlSource:
    """Which model the live figures are for (a bundle or model store entry: its champion),
    how many decisions they cover, the round-trip cost (direction3's default neutral band)."""

    bundle: Path | None = None
    rolling: int = 500
    round_trip: float = 0.0024
    bins: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> MlSource:
        cfg = settings.mlops
        entry = cfg.store_root(settings.data.dir) / cfg.model
        bundle = entry if entry.is_dir() else None
        return cls(bundle, cfg.rolling, settings.costs.round_trip, settings.validation.ece_bins)


def realised(prices: np.ndarray, times: pd.DatetimeIndex, horizon: int) -> np.ndarray:
    """Forward return over ``horizon`` recorded bars; NaN where a bar is missing in between."""
    n = prices.size
    out = np.full(n, np.nan)
    if n <= horizon:
        return out
    step = np.median(np.diff(times.asi8)) if n > 1 else 0
    span = times.asi8[horizon:] - times.asi8[:-horizon]
    ok = span == horizon * step
    out[:-horizon] = np.where(ok, prices[horizon:] / prices[:-horizon] - 1.0, np.nan)
    return out


def outcome_classes(returns: np.ndarray, label: dict[str, Any], round_trip: float) -> np.ndarray:
    """The label class each forward return realised (NaN: unknown or a label not scored)."""
    kind = label.get("kind", "direction3")
    if kind == "binary":
        return np.where(np.isnan(returns), np.nan, (returns > 0).astype(float))
    band = label.get("neutral_band")
    band = round_trip if band is None else float(band)
    values = np.where(returns > band, 1.0, np.where(returns < -band, -1.0, 0.0))
    return np.where(np.isnan(returns), np.nan, values)


def _scored(frame: pd.DataFrame, info: Any, round_trip: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows × classes probabilities and realised class indices of the decisions scored."""
    classes = [float(c) for c in info.classes]
    names = class_names(np.asarray(classes))
    probas, outcomes = [], []
    for _, group in frame.groupby("symbol", sort=True):
        times = pd.DatetimeIndex(group["time"])
        forward = realised(group["price"].to_numpy(np.float64), times, info.horizon)
        realised_class = outcome_classes(forward, info.label, round_trip)
        for row_info, value in zip(group["info"], realised_class, strict=True):
            p = row_info.get("probabilities") or {}
            if math.isnan(value) or not all(k in p for k in names):
                continue
            probas.append([float(p[k]) for k in names])
            outcomes.append(classes.index(float(value)))
    return np.asarray(probas, dtype=np.float64).reshape(-1, len(classes)), np.asarray(
        outcomes, dtype=np.int64
    )


def _model_rows(frame: pd.DataFrame, created: str) -> pd.DataFrame:
    keep = [isinstance(i, dict) and i.get("bundle") == created for i in frame["info"]]
    return frame[np.asarray(keep, dtype=bool)] if len(frame) else frame


def _num(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def live_figures(frame: pd.DataFrame, info: Any, source: MlSource) -> dict[str, Any]:
    """Hit rate, Brier and calibration of the model's decisions with a known outcome."""
    from aitrader.validation import metrics as m

    if info.label.get("kind") == "triple_barrier":
        return {"scored": 0, "note": "triple-barrier outcomes need the bars' highs and lows; "
                "the live figures score direction3 and binary labels only"}  # fmt: skip
    proba, y = _scored(frame, info, source.round_trip)
    if y.size == 0:
        return {"scored": 0, "note": f"no decision has a known outcome yet ({info.horizon} bars)"}
    curve = m.reliability(y, proba, source.bins)
    return {
        "scored": int(y.size),
        "hit_rate": m.accuracy(y, proba),
        "brier": m.brier(y, proba),
        "ece": m.ece(y, proba, source.bins),
        "calibration": [
            {k: (_num(v) if k != "count" else int(v)) for k, v in row.items()}
            for row in curve[curve["count"] > 0].to_dict("records")
        ],
    }


def ml_metrics(ledger: Ledger, source: MlSource) -> dict[str, Any]:
    """The ``/ml-metrics`` answer (see the module docstring)."""
    from aitrader.models.registry import load_info

    drift = ledger.load_state(DRIFT)
    if source.bundle is None:
        note = "no model configured (mlops.store / mlops.model name no stored model)"
        return {"model": None, "live": {"scored": 0, "note": note}, "backtest": {}, "drift": drift}
    info = load_info(source.bundle)
    frame = _model_rows(ledger.decisions(source.rolling + info.horizon), info.created)
    live = {"decisions": len(frame)} | live_figures(frame, info, source)
    if len(frame):
        latency = frame["latency_ms"].to_numpy()
        live["latency_ms"] = {"p50": float(np.median(latency)), "max": float(latency.max())}
    backtest = {k: _num(info.metrics[k]) for k in BACKTEST if k in info.metrics}
    model: dict[str, Any] = {"path": str(source.bundle), "bundle": info.created}
    model["label"] = info.label_name
    model |= {"horizon": info.horizon, "classes": info.classes}
    if not backtest:
        model["note"] = (
            "the bundle holds no walk-forward figures (train it through the retrain job)"
        )
    return {"model": model, "live": live, "backtest": backtest, "drift": drift}
