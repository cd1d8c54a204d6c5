"""The agents' evaluation table: walk-forward on the bundled BTC and ETH hourly sets.

Every registered model kind except ``meta`` (the baselines majority, persistence, logistic and
LightGBM included; kinds whose optional package is missing are listed and skipped), then the
meta-agent with each combiner (agents: ``--meta-agents``; the HMM agent, when one is named, is
the regime agent, so skill weights are learnt per regime). The same inputs for every row:
default feature set plus ``trend_strength(window=2)`` (the persistence baseline's column) and
the 48-bar ``lags`` window (read by the hmm, garch and quantile agents), default labels
(3-class next bar, neutral band = round trip), default costs, and the same folds: a sliding
training window of ``--train-size`` rows refitted every ``--test-size`` rows (purge + embargo =
horizon; calibration and the trading decision on each training window's last 20 %). The
out-of-sample targets trade through the risk-managed engine with costs and the ATR stop (net
Sharpe, trades, time in market); DSR and PBO over the per-fold decision candidates; interval
coverage for the kinds that output intervals (quantile, a meta-agent with a quantile agent).

    python benchmarks/bench_meta_eval.py [--train-size 12000] [--test-size 6000] [--workers 2]

Appends one JSON row per model to benchmarks/results/meta_eval.json as it goes (a killed run keeps
what it finished; ``--only`` reruns some rows) and prints a Markdown table at the end. Wall time
and CPU time (this process and its fold workers) and the load average are recorded per row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from aitrader.data.samples import get_sample, load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.models import kinds, lagged
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
from aitrader.validation.walkforward import Prepared, prepare

RESULTS = Path(__file__).parent / "results" / "meta_eval.json"
METRICS = (
    "accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "auc", "net_sharpe",
    "net_return", "trades", "time_in_market", "n", "folds",
)  # fmt: skip
COVERAGE = ("coverage_80", "coverage_95")


FEATURES = FeaturesConfig(
    extra=(
        FeatureSpec(name="trend_strength", params={"window": 2}),
        FeatureSpec(name="lags", params={"lags": lagged.DEFAULT_LAGS}),
    )
)


def _agent(name: str, args: argparse.Namespace) -> dict[str, Any]:
    trees = {"n_estimators": args.meta_quantile_trees} if name == "quantile" else {}
    return {"kind": name, "params": trees}


def models(args: argparse.Namespace) -> tuple[list[tuple[str, ModelConfig]], list[str]]:
    """(label, ModelConfig) of every kind and meta combiner, and the kinds left out."""
    names = [n for n in kinds.names() if n != "meta"]
    missing = [n for n in names if kinds.get(n).missing()]
    out = [(n, ModelConfig(kind=n)) for n in names if n not in missing]
    agents = [_agent(a, args) for a in args.meta_agents]
    regime = "hmm" if "hmm" in args.meta_agents else None
    for combiner in args.combiners:
        meta = {"agents": agents, "combiner": combiner, "regime_agent": regime}
        out.append((f"meta/{combiner}", ModelConfig.model_validate({"kind": "meta", "meta": meta})))
    return out, missing


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def evaluate_one(
    prepared: Prepared, name: str, label: str, config: ModelConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """One model's walk-forward row (metrics through the engine, DSR, PBO, wall time)."""
    sample = get_sample(name)
    experiment = ExperimentConfig(features=FEATURES)
    validation = ValidationConfig(
        n_jobs=args.workers, window="sliding", min_train=args.train_size,
        train_size=args.train_size, test_size=args.test_size,
    )  # fmt: skip
    load0, cpu0, start = os.getloadavg()[0], _cpu(), time.perf_counter()
    result = evaluate(
        prepared, config, validation, experiment.context(sample.symbol, sample.timeframe)
    )
    wall = time.perf_counter() - start
    stats = overfitting_stats(result)
    row: dict[str, Any] = {"dataset": name, "model": label}
    row |= {k: result.metrics.get(k) for k in (*METRICS, *COVERAGE)}
    row |= {"dsr": stats["dsr"], "pbo": stats["pbo"], "wall_s": round(wall, 1)}
    row |= {"cpu_s": round(_cpu() - cpu0, 1), "load": [load0, os.getloadavg()[0]]}
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| data | model | accuracy (vs majority) | log loss | Brier skill | ECE | AUC | coverage "
        "80/95 | net Sharpe | DSR | PBO | trades | time in market | wall (s) | CPU (s) |"
    )
    lines = [head, "|" + "---|" * 2 + "---:|" * 13]
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
            f"{int(r['trades'])} | {r['time_in_market']:.1%} | {r['wall_s']:.0f} | "
            f"{r['cpu_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=12_000, help="sliding window rows")
    parser.add_argument("--test-size", type=int, default=6_000, help="rows per test block")
    parser.add_argument("--datasets", nargs="+", default=["BTC-USD-1h", "ETH-USD-1h"])
    parser.add_argument(
        "--meta-agents", nargs="+", default=["lightgbm", "logistic", "garch", "hmm", "quantile"]
    )
    parser.add_argument("--meta-quantile-trees", type=int, default=60)
    parser.add_argument("--combiners", nargs="+", default=["vote", "confidence", "stack"])
    parser.add_argument("--only", nargs="*", default=None, help="evaluate only these labels")
    args = parser.parse_args()
    configs, missing = models(args)
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
