"""The agents on real data: walk-forward evaluation of hmm, garch (logistic and MLP head) and
quantile against the majority and LightGBM baselines, plus the quality of each agent's own
outputs out of sample (interval coverage, σ vs the next move, regimes).

Default feature set plus the ``lags`` window (48 bars), default labels (3-class next bar, neutral
band = round-trip cost), expanding walk-forward from 3,000 rows with ``--test-size`` rows per
fold (default 5,000: 10 folds instead of the default 49, to fit the shared 2-core box), default
costs; every model scored and traded by the same :func:`aitrader.validation.evaluation.evaluate`.
The outputs pass refits each agent on the same folds (:func:`fit_chain`) and reads
:func:`aitrader.models.agents.agent_outputs` on the test rows.

Usage: python benchmarks/bench_agents.py [--dataset BTC-USD-1h] [--test-size 5000]
       [--kinds majority lightgbm hmm garch garch_mlp quantile]
Writes benchmarks/results/agents.json.
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
from aitrader.labels import LabelConfig
from aitrader.models.agents import agent_outputs
from aitrader.models.config import ModelConfig
from aitrader.validation.config import ValidationConfig
from aitrader.validation.evaluation import evaluate
from aitrader.validation.experiment import ExperimentConfig, overfitting_stats
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
    if "ret_lo80" in out:
        for level in (80, 95):
            lo, hi = out[f"ret_lo{level}"].to_numpy(), out[f"ret_hi{level}"].to_numpy()
            stats[f"coverage{level}"] = float(np.mean((r[ok] >= lo[ok]) & (r[ok] <= hi[ok])))
            stats[f"width{level}"] = float(np.median(hi[ok] - lo[ok]))
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


def run(name: str, kinds: list[str], test_size: int, workers: int) -> list[dict[str, Any]]:
    candles = load_sample(name)
    sample = get_sample(name)
    features = FeaturesConfig(extra=(FeatureSpec(name="lags"),))
    start = time.perf_counter()
    prepared = prepare(candles, features, LabelConfig(), CostsConfig(), sample.timeframe)
    build_s = time.perf_counter() - start
    validation = ValidationConfig(n_jobs=workers, test_size=test_size)
    context = ExperimentConfig().context(sample.symbol, sample.timeframe)
    rows = []
    for label in kinds:
        model = ModelConfig.model_validate(CONFIGS[label])
        load0 = os.getloadavg()[0]
        start = time.perf_counter()
        result = evaluate(prepared, model, validation, context)
        wall = time.perf_counter() - start
        stats = overfitting_stats(result)
        row: dict[str, Any] = {"dataset": name, "model": label, "rows": len(prepared.y)}
        row |= {"features": prepared.X.shape[1], "folds": int(result.metrics["folds"])}
        row |= {k: result.metrics[k] for k in COLUMNS} | {"dsr": stats["dsr"], "pbo": stats["pbo"]}
        row |= {"evaluate_s": round(wall, 1), "features_s": round(build_s, 1)}
        row |= {"load_start": load0, "load_end": os.getloadavg()[0]}
        if label not in ("majority", "lightgbm"):
            start = time.perf_counter()
            row["outputs"] = output_quality(prepared, model, validation)
            row["outputs_s"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="BTC-USD-1h")
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    rows = run(args.dataset, args.kinds, args.test_size, args.workers)
    payload = {"cores": os.cpu_count(), "test_size": args.test_size, "results": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
