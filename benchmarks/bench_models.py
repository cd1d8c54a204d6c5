"""Model quality on real data: walk-forward on the bundled BTC and ETH hourly sets.

Default feature set (plus ``trend_strength(window=2)``, the last move's sign, for the
persistence baseline), default labels (3-class direction, neutral band = round-trip cost,
horizon 1), default validation (expanding walk-forward, first 3,000 rows, refit every 1,000,
purge + embargo = horizon, calibration on the last 20 % of each training window), default costs.
LightGBM vs logistic vs majority vs persistence with default hyper-parameters: nothing is tuned,
least of all on the evaluation window. Folds run on a 2-process pool; the wall time covers the
whole walk-forward of one model (features built once per data set, timed separately).

Usage: python benchmarks/bench_models.py [--workers 2] [--datasets BTC-USD-1h ETH-USD-1h]
Writes benchmarks/results/models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from aitrader.config import CostsConfig
from aitrader.data.samples import get_sample, load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
from aitrader.validation.walkforward import prepare

RESULTS = Path(__file__).parent / "results" / "models.json"
MODELS: tuple[str, ...] = ("lightgbm", "logistic", "majority", "persistence")
COLUMNS = (
    "accuracy", "balanced_accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "auc",
    "net_sharpe", "net_return", "exposure", "trades", "psr",
)  # fmt: skip


def run_dataset(name: str, workers: int) -> list[dict[str, Any]]:
    """Every model's walk-forward metrics on one bundled data set."""
    candles = load_sample(name)
    features = FeaturesConfig(extra=(FeatureSpec(name="trend_strength", params={"window": 2}),))
    start = time.perf_counter()
    prepared = prepare(candles, features, LabelConfig(), CostsConfig(), get_sample(name).timeframe)
    build_s = time.perf_counter() - start
    validation = ValidationConfig(n_jobs=workers)
    sample = get_sample(name)
    context = ExperimentConfig().context(sample.symbol, sample.timeframe)
    rows = []
    for kind in MODELS:
        start = time.perf_counter()
        result = evaluate(prepared, ModelConfig(kind=kind), validation, context)
        wall = time.perf_counter() - start
        stats = overfitting_stats(result)
        row: dict[str, Any] = {"dataset": name, "model": kind, "rows": len(prepared.y)}
        row |= {"features": prepared.X.shape[1], "folds": int(result.metrics["folds"])}
        row |= {k: result.metrics[k] for k in COLUMNS} | {"dsr": stats["dsr"], "pbo": stats["pbo"]}
        row |= {"walk_forward_s": round(wall, 2), "features_s": round(build_s, 2)}
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    keys = ("accuracy", "majority_rate", "log_loss", "brier_skill", "ece", "net_sharpe")
    values = " ".join(f"{k}={row[k]:.4f}" for k in keys)
    return f"{row['dataset']:<11} {row['model']:<12} {values} wall={row['walk_forward_s']}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=["BTC-USD-1h", "ETH-USD-1h"])
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in run_dataset(name, args.workers)]
    payload = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "workers": args.workers,
        "costs": CostsConfig().model_dump(),
        "labels": LabelConfig().model_dump(),
        "validation": ValidationConfig(n_jobs=args.workers).model_dump(),
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
