"""Out-of-sample evaluation: run the folds, stitch predictions, score them and trade them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.models.config import ModelConfig
from aitrader.models.decision import positions
from aitrader.validation import metrics as m
from aitrader.validation.config import ValidationConfig
from aitrader.validation.overfitting import probabilistic_sharpe
from aitrader.validation.splits import CPCV, Fold, cpcv, make_folds
from aitrader.validation.walkforward import FoldOutput, Prepared, Progress, run_folds


@dataclass(frozen=True)
class Evaluation:
    """Overall and per-fold metrics, stitched OOS predictions, reliability data and the OOS
    net returns of every decision threshold of the grid (for PBO / DSR)."""

    metrics: dict[str, float]
    folds: pd.DataFrame
    predictions: pd.DataFrame
    reliability: pd.DataFrame
    threshold_returns: pd.DataFrame


@dataclass(frozen=True)
class _Stitched:
    rows: np.ndarray
    proba: np.ndarray
    climatology: np.ndarray
    threshold: np.ndarray
    fold: np.ndarray


def _stitch(parts: list[tuple[FoldOutput, np.ndarray]]) -> _Stitched:
    """Concatenate (output, mask over its test rows) pieces in row order."""
    rows = np.concatenate([o.fold.test[k] for o, k in parts])
    order = np.argsort(rows, kind="stable")

    def cat(values: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(values)[order]

    return _Stitched(
        rows=rows[order],
        proba=cat([o.proba[k] for o, k in parts]),
        climatology=cat([np.tile(o.climatology, (int(k.sum()), 1)) for o, k in parts]),
        threshold=cat([np.full(int(k.sum()), o.threshold) for o, k in parts]),
        fold=cat([np.full(int(k.sum()), o.fold.number) for o, k in parts]),
    )


def _all(outputs: list[FoldOutput]) -> list[tuple[FoldOutput, np.ndarray]]:
    return [(o, np.ones(o.fold.test.size, dtype=bool)) for o in outputs]


def _path(outputs: list[FoldOutput], split: CPCV, path: list[int]) -> _Stitched:
    parts = []
    for group, number in enumerate(path):
        output = outputs[number]
        parts.append((output, np.isin(output.fold.test, split.groups[group])))
    return _stitch(parts)


def _trade(
    prepared: Prepared, s: _Stitched, config: ModelConfig, costs: CostsConfig
) -> tuple[np.ndarray, np.ndarray]:
    held = np.zeros(s.rows.size)
    for threshold in np.unique(s.threshold):
        at = s.threshold == threshold
        held[at] = positions(s.proba[at], float(threshold), config.decision.allow_short)
    return held, m.net_returns(held, prepared.next_return[s.rows], costs)


def _fold_table(prepared: Prepared, outputs: list[FoldOutput], bins: int) -> pd.DataFrame:
    index = prepared.X.index
    rows = []
    for o in outputs:
        f, y = o.fold, m.encode(prepared.y[o.fold.test], prepared.classes)
        scores = m.classification_metrics(y, o.proba, np.tile(o.climatology, (y.size, 1)), bins)
        rows.append(
            {
                "fold": f.number,
                "train_start": index[f.train[0]],
                "train_end": index[f.train[-1]],
                "n_train": f.train.size,
                "n_calibrate": f.calibrate.size,
                "test_start": index[f.test[0]],
                "test_end": index[f.test[-1]],
                "threshold": o.threshold,
                **scores,
            }
        )
    return pd.DataFrame(rows)


def _threshold_returns(
    prepared: Prepared, s: _Stitched, config: ModelConfig, costs: CostsConfig
) -> pd.DataFrame:
    columns = {}
    for threshold in config.decision.grid:
        held = positions(s.proba, threshold, config.decision.allow_short)
        columns[f"threshold={threshold:g}"] = m.net_returns(
            held, prepared.next_return[s.rows], costs
        )
    return pd.DataFrame(columns, index=prepared.X.index[s.rows])


def _predictions(
    prepared: Prepared, s: _Stitched, held: np.ndarray, net: np.ndarray
) -> pd.DataFrame:
    frame = pd.DataFrame(
        s.proba, index=prepared.X.index[s.rows], columns=[f"p_{c:g}" for c in prepared.classes]
    )
    frame.insert(0, "y", prepared.y[s.rows])
    frame.insert(0, "fold", s.fold)
    frame["threshold"] = s.threshold
    frame["position"] = held
    frame["next_return"] = prepared.next_return[s.rows]
    frame["net_return"] = net
    return frame


def evaluate(
    prepared: Prepared,
    model: ModelConfig,
    validation: ValidationConfig,
    costs: CostsConfig,
    progress: Progress | None = None,
) -> Evaluation:
    """Out-of-sample evaluation of ``model`` under ``validation`` (CPCV: path 0 is traded and
    every path's Sharpe is summarised)."""
    embargo = prepared.horizon if validation.embargo is None else validation.embargo
    split = cpcv(prepared.windows, validation, embargo) if validation.scheme == "cpcv" else None
    folds: list[Fold] = split.folds if split else make_folds(prepared.windows, validation, embargo)
    outputs = run_folds(prepared, folds, model, costs, validation.n_jobs, progress)
    pooled = _stitch(_all(outputs))
    main = _path(outputs, split, split.paths[0]) if split else pooled
    y = m.encode(prepared.y[pooled.rows], prepared.classes)
    scores = m.classification_metrics(y, pooled.proba, pooled.climatology, validation.ece_bins)
    held, net = _trade(prepared, main, model, costs)
    scores |= m.trading_metrics(held, net, prepared.periods_per_year)
    scores["psr"] = probabilistic_sharpe(net) if net.size > 2 else float("nan")
    scores["folds"] = float(len(folds))
    if split:
        sharpes = [
            m.sharpe(_trade(prepared, _path(outputs, split, p), model, costs)[1])
            for p in split.paths
        ]
        scores["path_sharpe_mean"] = float(np.mean(sharpes))
        scores["path_sharpe_std"] = float(np.std(sharpes))
    return Evaluation(
        metrics=scores,
        folds=_fold_table(prepared, outputs, validation.ece_bins),
        predictions=_predictions(prepared, main, held, net),
        reliability=m.reliability(y, pooled.proba, validation.ece_bins),
        threshold_returns=_threshold_returns(prepared, main, model, costs),
    )
