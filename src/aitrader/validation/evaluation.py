"""Out-of-sample evaluation: run the folds, stitch predictions, score them and trade them.

The trading metrics come from the strategy that trades: each fold's decision is tuned on its
calibration slice (:func:`aitrader.strategy.edge.tune_decision`), its out-of-sample probabilities
become targets through :func:`aitrader.strategy.signals.signal_targets`, and the stitched
targets run through the risk-managed engine (:func:`run_managed_backtest`) with costs and the
ATR stop, on the out-of-sample bars only. The same holds for every candidate gate counted as a
trial by the deflated Sharpe ratio and PBO.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from aitrader.engine.backtest import RunOptions
from aitrader.engine.managed import ManagedResult, run_managed_backtest
from aitrader.models.config import ModelConfig
from aitrader.strategy.edge import COVERAGES, DecisionContext, gates, market_inputs, tune_decision
from aitrader.strategy.signals import (
    SignalInputs,
    TunedThresholds,
    direction_probabilities,
    resolve,
    signal_targets,
)
from aitrader.validation import metrics as m
from aitrader.validation.config import ValidationConfig
from aitrader.validation.fold_agents import fold_protection, fold_regimes, stitched_agents
from aitrader.validation.overfitting import probabilistic_sharpe
from aitrader.validation.splits import CPCV, Fold, cpcv, make_folds
from aitrader.validation.walkforward import (
    FoldOutput,
    Prepared,
    Progress,
    fold_pool,
    fold_workers,
    in_worker,
    run_folds,
)


@dataclass(frozen=True)
class Evaluation:
    """Overall and per-fold metrics, stitched OOS predictions and targets, reliability data, the
    managed backtest of the OOS bars and the OOS net returns of every candidate gate (trials)."""

    metrics: dict[str, float]
    folds: pd.DataFrame
    predictions: pd.DataFrame
    reliability: pd.DataFrame
    candidate_returns: pd.DataFrame
    backtest: ManagedResult
    returns: pd.Series  # per-bar net returns of the traded strategy on the OOS bars


@dataclass(frozen=True)
class _Stitched:
    rows: np.ndarray
    proba: np.ndarray
    climatology: np.ndarray
    fold: np.ndarray


@dataclass(frozen=True)
class _Fold:
    """One fold's output with its tuned decision and candidate gates."""

    output: FoldOutput
    tuned: TunedThresholds
    gates: dict[float, float]


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
        fold=cat([np.full(int(k.sum()), o.fold.number) for o, k in parts]),
    )


def _series(
    prepared: Prepared, rows: np.ndarray, proba: np.ndarray
) -> tuple[pd.Series, pd.Series | None]:
    up, down = direction_probabilities(proba, prepared.classes)
    index = prepared.X.index[rows]
    return pd.Series(up, index), (None if down is None else pd.Series(down, index))


def _tune(prepared: Prepared, output: FoldOutput, ctx: DecisionContext) -> _Fold:  # in a worker
    """The fold's decision, tuned on its calibration slice (bars up to that slice's end)."""
    rows = output.fold.calibrate
    if rows.size == 0:
        flat = TunedThresholds(
            min_ev=None, allow_long=False, allow_short=False, coverage=0.0, net_return=0.0,
            trades=0, samples=0, notes=("no calibration slice to tune the decision on",),
        )  # fmt: skip
        return _Fold(output, flat, {})
    up, down = _series(prepared, rows, output.calibration_proba)
    candles = prepared.candles.loc[: up.index[-1]]
    ctx = fold_regimes(ctx, output.agents)
    tuned = tune_decision(candles, up, down, ctx)
    inputs = market_inputs(candles, up, down, ctx)
    window = np.asarray(candles.index >= up.index[0])
    return _Fold(output, tuned, gates(inputs, window, ctx))


def _take(inputs: SignalInputs, at: np.ndarray) -> SignalInputs:
    def pick(values: object) -> np.ndarray | None:
        return None if values is None else np.asarray(values)[at]

    return SignalInputs(
        np.asarray(inputs.p_up)[at],
        np.asarray(inputs.avg_win)[at],
        np.asarray(inputs.avg_loss)[at],
        pick(inputs.p_down),
        pick(inputs.regimes),
    )


def _decision(f: _Fold, choose: float | None, ctx: DecisionContext) -> TunedThresholds:
    """The fold's tuned decision, or candidate gate ``choose`` (the sides as configured)."""
    if choose is None:
        return f.tuned
    base = resolve(ctx.signals, ctx.symbol, ctx.timeframe)
    update = {"min_ev": f.gates.get(choose), "allow_long": base.allow_long}
    return f.tuned.model_copy(update=update | {"allow_short": base.allow_short})


def _targets(
    prepared: Prepared,
    path: list[tuple[_Fold, np.ndarray]],
    ctx: DecisionContext,
    choose: float | None,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """OOS bars, their target fractions and what each bar's fold agents say: each fold's test
    rows (``path`` masks) through :func:`signal_targets` with that fold's tuned decision (or
    candidate gate ``choose``), regimes from the fold's HMM agent with ``source: hmm``."""
    s = _stitch([(f.output, k) for f, k in path])
    up, down = _series(prepared, s.rows, s.proba)
    agents = stitched_agents([f.output for f, _ in path], s.fold, up.index)
    inputs = market_inputs(prepared.candles, up, down, fold_regimes(ctx, agents))
    at = prepared.candles.index.get_indexer(up.index)
    fraction = np.full(len(prepared.candles), np.nan)
    for f, _ in path:
        pos = at[s.fold == f.output.fold.number]
        if pos.size:
            config = ctx.tuned(_decision(f, choose, ctx))
            _, target = signal_targets(
                _take(inputs, pos), config, ctx.costs, ctx.symbol, ctx.timeframe
            )
            fraction[pos] = target
    lo, hi = int(at.min()), int(at.max()) + 1
    candles = prepared.candles.iloc[lo:hi]
    return candles, fraction[lo:hi], agents.reindex(candles.index)


def _trade(
    prepared: Prepared,
    path: list[tuple[_Fold, np.ndarray]],
    ctx: DecisionContext,
    choose: float | None = None,
) -> tuple[ManagedResult, pd.Series, np.ndarray]:
    """The path's targets through the risk-managed engine: result, per-bar net returns and
    the targets."""
    candles, fraction, agents = _targets(prepared, path, ctx, choose)
    stop_loss, vol = fold_protection(ctx, agents)
    options = RunOptions(
        timeframe=ctx.timeframe, calendar=ctx.calendar, name="model", benchmarks=False,
        stop_loss=stop_loss,
    )  # fmt: skip
    stops = ctx.stop if stop_loss is None else None
    result = run_managed_backtest(candles, fraction, stops, ctx.broker, ctx.risk, options, vol)
    equity = result.result.equity
    returns = equity.pct_change().fillna(equity.iloc[0] / ctx.broker.initial_cash - 1.0)
    return result, returns, fraction


def _fold_table(prepared: Prepared, folds: list[_Fold], bins: int) -> pd.DataFrame:
    index = prepared.X.index
    rows = []
    for f in folds:
        o = f.output
        y = m.encode(prepared.y[o.fold.test], prepared.classes)
        scores = m.classification_metrics(y, o.proba, np.tile(o.climatology, (y.size, 1)), bins)
        scores |= _interval_scores(prepared, [o])
        t = f.tuned
        rows.append(
            {
                "fold": o.fold.number,
                "train_start": index[o.fold.train[0]],
                "train_end": index[o.fold.train[-1]],
                "n_train": o.fold.train.size,
                "n_calibrate": o.fold.calibrate.size,
                "test_start": index[o.fold.test[0]],
                "test_end": index[o.fold.test[-1]],
                "min_ev": np.nan if t.min_ev is None else t.min_ev,
                "allow_long": t.trades_anything and t.allow_long,
                "allow_short": t.trades_anything and t.allow_short,
                "calibration_net_return": t.net_return,
                "decision_notes": "; ".join(t.notes),
                **scores,
            }
        )
    return pd.DataFrame(rows)


def _interval_scores(prepared: Prepared, outputs: list[FoldOutput]) -> dict[str, float]:
    """Coverage and median width of the model's intervals (quantile agent, or a meta-agent with
    one) against the realised next-bar log return of the test rows; empty without intervals."""
    parts = [o for o in outputs if o.intervals is not None and len(o.intervals.columns)]
    if not parts:
        return {}
    table = pd.concat([o.intervals for o in parts if o.intervals is not None])
    rows = np.concatenate([o.fold.test for o in parts])
    return m.interval_metrics(table, np.log1p(prepared.next_return[rows]))


def _predictions(prepared: Prepared, s: _Stitched, target: pd.Series) -> pd.DataFrame:
    index = prepared.X.index[s.rows]
    frame = pd.DataFrame(s.proba, index=index, columns=[f"p_{c:g}" for c in prepared.classes])
    frame.insert(0, "y", prepared.y[s.rows])
    frame.insert(0, "fold", s.fold)
    frame["target"] = target.reindex(index).to_numpy()
    frame["next_return"] = prepared.next_return[s.rows]
    return frame


def trading_metrics(
    result: ManagedResult, returns: pd.Series, periods_per_year: float
) -> dict[str, float]:
    """What the OOS run earned: net return, Sharpe (annualised and per bar), PSR, trades, time in
    the market and mean exposure."""
    r = returns.to_numpy()
    exposure = result.result.exposure.to_numpy()
    held = np.abs(np.nan_to_num(exposure)) > 1e-9
    return {
        "net_return": float(result.result.equity.iloc[-1] / result.result.initial_cash - 1.0),
        "net_sharpe": m.sharpe(r, periods_per_year),
        "net_sharpe_per_bar": m.sharpe(r),
        "psr": probabilistic_sharpe(r) if r.size > 2 else float("nan"),
        "trades": float(len(result.result.trades)),
        "time_in_market": float(held.mean()) if held.size else 0.0,
        "exposure": float(np.nanmean(np.abs(exposure))) if exposure.size else 0.0,
        "oos_bars": float(r.size),
    }


LOW_TIME_IN_MARKET = 0.05


def market_note(evaluation: Evaluation) -> str | None:
    """Why the strategy was rarely in the market (under 5 % of the OOS bars), from the folds'
    decision notes; None when it was in the market more."""
    m = evaluation.metrics
    if m["time_in_market"] >= LOW_TIME_IN_MARKET:
        return None
    notes = [n for n in evaluation.folds["decision_notes"] if n]
    reason = f"; last fold: {notes[-1]}" if notes else ""
    return (
        f"in the market {m['time_in_market']:.1%} of the out-of-sample bars: the decision "
        f"traded in {m['folds_trading']:.0f} of {m['folds']:.0f} folds{reason}"
    )


def _path(folds: list[_Fold], split: CPCV, path: list[int]) -> list[tuple[_Fold, np.ndarray]]:
    out = []
    for group, number in enumerate(path):
        f = folds[number]
        out.append((f, np.isin(f.output.fold.test, split.groups[group])))
    return out


def _path_sharpes(
    prepared: Prepared, folds: list[_Fold], split: CPCV, ctx: DecisionContext
) -> dict[str, float]:
    """The mean and spread of the Sharpe ratio over every CPCV path, each traded as ``ctx`` says."""
    sharpes = [
        m.sharpe(_trade(prepared, _path(folds, split, p), ctx)[1].to_numpy()) for p in split.paths
    ]
    return {"path_sharpe_mean": float(np.mean(sharpes)), "path_sharpe_std": float(np.std(sharpes))}


def _returns(
    prepared: Prepared, path: list[tuple[_Fold, np.ndarray]], ctx: DecisionContext, choose: float
) -> pd.Series:
    return _trade(prepared, path, ctx, choose)[1]


def _candidates(
    prepared: Prepared,
    path: list[tuple[_Fold, np.ndarray]],
    ctx: DecisionContext,
    pool: ProcessPoolExecutor | None,
) -> Callable[[], pd.DataFrame]:
    """OOS net returns of every candidate gate (the same for every fold) through the engine:
    started on ``pool`` now when given, collected by the returned call."""
    names = {c: f"coverage={c:g}" for c in COVERAGES}
    if pool is None:
        return lambda: pd.DataFrame({names[c]: _returns(prepared, path, ctx, c) for c in names})
    futures = {c: pool.submit(in_worker, _returns, path, ctx, c) for c in names}
    return lambda: pd.DataFrame({names[c]: f.result() for c, f in futures.items()})


def evaluate(
    prepared: Prepared,
    model: ModelConfig,
    validation: ValidationConfig,
    context: DecisionContext | None = None,
    progress: Progress | None = None,
    candidates: bool = True,
    pool: ProcessPoolExecutor | None = None,
) -> Evaluation:
    """Out-of-sample evaluation of ``model`` under ``validation``, traded as ``context`` says
    (CPCV: path 0 is traded and every path's Sharpe is summarised). ``candidates`` False skips
    the candidate gates' runs (tuning trials need only the traded strategy). Folds (each with
    its decision tuning) and the candidates' engine runs share one process pool: ``pool``, or
    one started here for ``validation.n_jobs`` workers."""
    ctx = context or DecisionContext()
    embargo = prepared.horizon if validation.embargo is None else validation.embargo
    split = cpcv(prepared.windows, validation, embargo) if validation.scheme == "cpcv" else None
    splits: list[Fold] = split.folds if split else make_folds(prepared.windows, validation, embargo)
    workers = (
        1 if pool is not None else fold_workers(validation.n_jobs, len(prepared.y), len(splits))
    )
    with fold_pool(prepared, workers) as own:
        pool = pool or own
        folds: list[_Fold] = run_folds(
            prepared, splits, model, pool, progress, partial(_tune, ctx=ctx)
        )
        everything = [(f, np.ones(f.output.fold.test.size, dtype=bool)) for f in folds]
        main = _path(folds, split, split.paths[0]) if split else everything
        collect = _candidates(prepared, main, ctx, pool) if candidates else pd.DataFrame
        result, returns, fraction = _trade(prepared, main, ctx)
        pending = collect()
    pooled = _stitch([(f.output, k) for f, k in everything])
    y = m.encode(prepared.y[pooled.rows], prepared.classes)
    scores = m.classification_metrics(y, pooled.proba, pooled.climatology, validation.ece_bins)
    scores |= _interval_scores(prepared, [f.output for f in folds])
    scores |= trading_metrics(result, returns, prepared.periods_per_year)
    scores["folds"] = float(len(splits))
    scores["folds_trading"] = float(sum(f.tuned.trades_anything for f in folds))
    scores |= _path_sharpes(prepared, folds, split, ctx) if split else {}
    target = pd.Series(fraction, index=result.result.equity.index)
    return Evaluation(
        metrics=scores,
        folds=_fold_table(prepared, folds, validation.ece_bins),
        predictions=_predictions(prepared, _stitch([(f.output, k) for f, k in main]), target),
        reliability=m.reliability(y, pooled.proba, validation.ece_bins),
        candidate_returns=pending,
        backtest=result,
        returns=returns,
    )
