"""The agents' evaluation table: walk-forward on the bundled BTC and ETH hourly sets.

Every registered model kind except ``meta`` (the baselines majority, persistence, logistic and
LightGBM included; kinds whose optional package is missing are listed and skipped), then the
meta-agent with each combiner (agents: ``--meta-agents``). Default feature set plus
``trend_strength(window=2)`` (the persistence baseline's column), default labels (3-class next
bar, neutral band = round trip), default costs, expanding walk-forward (first 3,000 rows, refit
every 1,000, purge + embargo = horizon, calibration and the trading decision on each training
window's last 20 %); ``--max-folds N`` scores the last N folds only (time). The out-of-sample
targets trade through the risk-managed engine with costs and the ATR stop (net Sharpe, trades,
time in market); DSR and PBO over the per-fold decision candidates. Interval coverage is filled
in for kinds whose evaluation reports it (none of today's kinds: "–").

    python benchmarks/bench_meta_eval.py [--max-folds 10] [--workers 2] [--datasets BTC-USD-1h]

Appends one JSON row per model to benchmarks/results/meta_eval.json as it goes (a killed run keeps
what it finished) and prints a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from aitrader.data.samples import get_sample, load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.models import kinds
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
from aitrader.validation.walkforward import Prepared, prepare

RESULTS = Path(__file__).parent / "results" / "meta_eval.json"
FEATURES = FeaturesConfig(extra=(FeatureSpec(name="trend_strength", params={"window": 2}),))
METRICS = (
    "accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "auc", "net_sharpe",
    "net_return", "trades", "time_in_market", "n", "folds",
)  # fmt: skip
COVERAGE = ("coverage_80", "coverage_95")


def models(
    meta_agents: list[str], combiners: list[str]
) -> tuple[list[tuple[str, ModelConfig]], list[str]]:
    """(label, ModelConfig) of every kind and meta combiner, and the kinds left out."""
    names = [n for n in kinds.names() if n != "meta"]
    missing = [n for n in names if kinds.get(n).missing()]
    out = [(n, ModelConfig(kind=n)) for n in names if n not in missing]
    for combiner in combiners:
        meta = {"agents": meta_agents, "combiner": combiner}
        out.append((f"meta/{combiner}", ModelConfig.model_validate({"kind": "meta", "meta": meta})))
    return out, missing


def evaluate_one(
    prepared: Prepared, name: str, label: str, config: ModelConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """One model's walk-forward row (metrics through the engine, DSR, PBO, wall time)."""
    sample = get_sample(name)
    experiment = ExperimentConfig(features=FEATURES)
    validation = ValidationConfig(n_jobs=args.workers, max_folds=args.max_folds)
    start = time.perf_counter()
    result = evaluate(
        prepared, config, validation, experiment.context(sample.symbol, sample.timeframe)
    )
    wall = time.perf_counter() - start
    stats = overfitting_stats(result)
    row: dict[str, Any] = {"dataset": name, "model": label}
    row |= {k: result.metrics.get(k) for k in (*METRICS, *COVERAGE)}
    row |= {"dsr": stats["dsr"], "pbo": stats["pbo"], "wall_s": round(wall, 1)}
    row |= {"load": os.getloadavg()[0]}
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | model | accuracy (vs majority) | log loss | Brier skill | ECE | AUC | coverage "
        "80/95 | net Sharpe | DSR | PBO | trades | time in market | wall (s) |"
    )
    lines = [head, "|" + "---|" * 2 + "---:|" * 12]
    for r in rows:
        edge = r["accuracy"] - r["majority_rate"]
        cover = (
            "–"
            if r.get("coverage_80") is None
            else f"{r['coverage_80']:.2f}/{r['coverage_95']:.2f}"
        )
        lines.append(
            f"| {r['dataset'][:3]} | {r['model']} | {r['accuracy']:.3f} ({edge:+.3f}) | "
            f"{r['log_loss']:.3f} | {r['brier_skill']:+.3f} | {r['ece']:.3f} | {r['auc']:.3f} | "
            f"{cover} | {r['net_sharpe']:+.2f} | {r['dsr']:.2f} | {r['pbo']:.2f} | "
            f"{int(r['trades'])} | {r['time_in_market']:.1%} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-folds", type=int, default=None)
    parser.add_argument("--datasets", nargs="+", default=["BTC-USD-1h", "ETH-USD-1h"])
    parser.add_argument(
        "--meta-agents", nargs="+", default=["lightgbm", "logistic", "persistence", "xgboost"]
    )
    parser.add_argument("--combiners", nargs="+", default=["vote", "confidence", "stack"])
    parser.add_argument("--only", nargs="*", default=None, help="evaluate only these labels")
    args = parser.parse_args()
    configs, missing = models(args.meta_agents, args.combiners)
    if args.only:
        configs = [(label, c) for label, c in configs if label in args.only]
    print(f"skipped (package missing): {missing or 'none'}", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    rows = []
    for name in args.datasets:
        sample = get_sample(name)
        prepared = prepare(
            load_sample(name), FEATURES, ExperimentConfig().labels, ExperimentConfig().costs,
            sample.timeframe,
        )  # fmt: skip
        for label, config in configs:
            row = evaluate_one(prepared, name, label, config, args)
            rows.append(row)
            with RESULTS.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
