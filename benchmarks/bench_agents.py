"""The agents on real data: walk-forward evaluation of hmm, garch (logistic and MLP head) and
quantile against the majority and LightGBM baselines, plus the quality of each agent's own
outputs out of sample (interval coverage, σ vs the next move, regimes).

Default feature set plus the ``lags`` window (48 bars), default labels (3-class next bar, neutral
band = round-trip cost), expanding walk-forward from 3,000 rows with ``--test-size`` rows per
fold (default 5,000: 10 folds instead of the default 49, to fit the shared 2-core box), default
costs; every model scored and traded by the same :func:`aitrader.validation.evaluation.evaluate`.
The outputs pass refits each agent on the same folds (:func:`fit_chain`) and reads
:func:`aitrader.models.agents.agent_outputs` on the test rows.

One decision's model latency (a single feature row → calibrated probabilities + the agent's
outputs, the per-bar path) is timed on the first fold's chain over 300 test rows.

Usage: python benchmarks/bench_agents.py [--dataset BTC-USD-1h] [--test-size 5000]
       [--kinds majority lightgbm hmm garch garch_mlp quantile] [--latency-only]
Writes benchmarks/results/agents.json (agents_latency.json with --latency-only).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.data.samples import get_sample, load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.agents import agent_outputs
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
from aitrader.validation.metrics import interval_metrics
from aitrader.validation.splits import make_folds
from aitrader.validation.walkforward import Prepared, fit_chain, prepare

RESULTS = Path(__file__).parent / "results" / "agents.json"
CONFIGS: dict[str, dict[str, Any]] = {
    "majority": {"kind": "majority"},
    "lightgbm": {"kind": "lightgbm"},
    "hmm": {"kind": "hmm"},
    "garch": {"kind": "garch"},
    "garch_mlp": {"kind": "garch", "garch": {"hidden": 16}},
    "quantile": {"kind": "quantile"},
}
COLUMNS = (
    "accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "auc",
    "net_sharpe", "exposure", "trades",
)  # fmt: skip


def output_quality(
    prepared: Prepared, model: ModelConfig, validation: ValidationConfig
) -> dict[str, float]:
    """Each fold refitted; the agent's outputs on its test rows scored against the next bar."""
    folds = make_folds(prepared.windows, validation, prepared.horizon)
    tables = []
    for fold in folds:
        chain, _ = fit_chain(prepared, fold, model)
        tables.append(agent_outputs(chain, prepared.X.iloc[fold.test]))
    out = pd.concat(tables)
    candles = prepared.candles
    r = np.log(candles["close"]).diff().shift(-1).reindex(out.index).to_numpy()
    hl = np.log(candles["high"] / candles["low"]).shift(-1).reindex(out.index).to_numpy()
    ok = np.isfinite(r)
    stats: dict[str, float] = {"rows": float(ok.sum())}
    stats |= interval_metrics(out, r)
    if "garch_sigma" in out:
        sigma = out["garch_sigma"].to_numpy()
        stats["corr_sigma_abs_next_return"] = float(np.corrcoef(sigma[ok], np.abs(r[ok]))[0, 1])
        stats["range_ratio_pred_over_real"] = float(out["garch_range"].mean() / np.nanmean(hl))
    if "hmm_p0" in out:
        state = out.filter(like="hmm_p").to_numpy().argmax(axis=1)
        for k in range(int(state.max()) + 1):
            here = ok & (state == k)
            stats[f"regime{k}_share"] = float(here.mean())
            stats[f"regime{k}_abs_next_return"] = float(np.abs(r[here]).mean())
    return stats


def latency(
    prepared: Prepared, model: ModelConfig, validation: ValidationConfig
) -> dict[str, float]:
    """One decision's model time: the chain of the first fold predicting single rows (the
    per-bar path: one feature row → calibrated probabilities and the agent's outputs)."""
    fold = make_folds(prepared.windows, validation, prepared.horizon)[0]
    chain, _ = fit_chain(prepared, fold, model)
    times = []
    for i in fold.test[:300]:
        row = prepared.X.iloc[[int(i)]]
        start = time.perf_counter()
        chain.predict_proba(row)
        agent_outputs(chain, row)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99))}


def evaluated(
    prepared: Prepared, label: str, validation: ValidationConfig, context: Any
) -> dict[str, Any]:
    """One kind's walk-forward metrics, overfitting statistics, wall time and load."""
    model = ModelConfig.model_validate(CONFIGS[label])
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    result = evaluate(prepared, model, validation, context)
    wall = time.perf_counter() - start
    stats = overfitting_stats(result)
    row: dict[str, Any] = {"rows": len(prepared.y), "features": prepared.X.shape[1]}
    row |= {"folds": int(result.metrics["folds"])}
    row |= {k: result.metrics[k] for k in COLUMNS} | {"dsr": stats["dsr"], "pbo": stats["pbo"]}
    row |= {"evaluate_s": round(wall, 1), "load_start": load0, "load_end": os.getloadavg()[0]}
    if label not in ("majority", "lightgbm"):
        start = time.perf_counter()
        row["outputs"] = output_quality(prepared, model, validation)
        row["outputs_s"] = round(time.perf_counter() - start, 1)
    return row


def run(
    name: str, kinds: list[str], validation: ValidationConfig, only_latency: bool
) -> list[dict[str, Any]]:
    """Every chosen kind on one bundled data set (features built once)."""
    sample = get_sample(name)
    features = FeaturesConfig(extra=(FeatureSpec(name="lags"),))
    start = time.perf_counter()
    prepared = prepare(load_sample(name), features, LabelConfig(), CostsConfig(), sample.timeframe)
    build_s = round(time.perf_counter() - start, 1)
    context = ExperimentConfig().context(sample.symbol, sample.timeframe)
    rows = []
    for label in kinds:
        row: dict[str, Any] = {"dataset": name, "model": label, "features_s": build_s}
        if not only_latency:
            row |= evaluated(prepared, label, validation, context)
        model = ModelConfig.model_validate(CONFIGS[label])
        row["latency"] = latency(prepared, model, validation) | {"load": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="BTC-USD-1h")
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--latency-only", action="store_true", help="skip the walk-forward")
    args = parser.parse_args()
    validation = ValidationConfig(n_jobs=args.workers, test_size=args.test_size)
    rows = run(args.dataset, args.kinds, validation, args.latency_only)
    payload = {"cores": os.cpu_count(), "test_size": args.test_size, "results": rows}
    path = RESULTS.with_name("agents_latency.json") if args.latency_only else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
