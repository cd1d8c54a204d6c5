"""Decision latency of the meta-agent against the LightGBM-only chain, in the same run.

Two bundles are trained on the same bundled BTC/USD hours before a replay window (default feature
set plus ``trend_strength(window=2)`` for the persistence agent and the 48-bar ``lags`` window for
the hmm, garch and quantile agents; default labels and costs): the default LightGBM chain, and a
meta-agent whose agents are every registered kind except ``meta`` (today: lightgbm,
random_forest, logistic, majority, persistence, xgboost, hmm — the regime agent —, garch,
quantile, cnn, lstm, tcn, transformer; kinds whose optional package is missing are left out and
listed). Then every bar of the window goes through each
bundle's model strategy (:class:`aitrader.strategies.model.ModelBundleStrategy` via
``StrategyFeed``) bar by bar, the two interleaved bar by bar so that load hits both alike. Each
decision is timed whole (``feed.at``: the incremental feature row, every agent's calibrated view,
the combiner and gate, the signal rule and the ATR stop) and by the strategy's own stages, in
wall time, and ``cpu``: the decision's CPU time on its thread (what it costs on a busy box, where
wall time mostly measures waiting for a core).

    python benchmarks/bench_meta.py [--bars 1000] [--train 12000] [--combiner vote] [--bundles DIR]

``--bundles DIR`` saves the trained bundles there, and a later run with the same options loads
them instead of training (train on a busy box, time the decisions on a quiet one).

Writes benchmarks/results/meta_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.types import Bar
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.models import kinds, lagged
from aitrader.models.config import ModelConfig
from aitrader.models.registry import ModelBundle, load_bundle, save_bundle
from aitrader.strategies.model import MODEL_HISTORY, STAGES, ModelBundleStrategy
from aitrader.strategy.base import Environment
from aitrader.strategy.feed import StrategyFeed
from aitrader.validation.experiment import ExperimentConfig
from bench_live import stats, train
from common import machine

RESULTS = Path(__file__).parent / "results" / "meta_latency.json"
SYMBOL, TIMEFRAME = "BTC/USD", "1h"
FEATURES = FeaturesConfig(
    extra=(
        FeatureSpec(name="trend_strength", params={"window": 2}),
        FeatureSpec(name="lags", params={"lags": lagged.DEFAULT_LAGS}),
    )
)


def agent_kinds() -> tuple[list[str], list[str]]:
    """Registered kinds usable as agents now, and those whose package is missing."""
    names = [n for n in kinds.names() if n != "meta"]
    missing = [n for n in names if kinds.get(n).missing()]
    return [n for n in names if n not in missing], missing


def replay(
    candles: pd.DataFrame, first: int, n: int, bundles: dict[str, ModelBundle]
) -> dict[str, dict[str, list[int]]]:
    """Each bundle's decision times per stage over the window, interleaved bar by bar."""
    settings = Settings(features=FEATURES)
    history = {SYMBOL: candles.iloc[first - MODEL_HISTORY : first]}
    feeds = {
        name: StrategyFeed(
            ModelBundleStrategy(), Environment((SYMBOL,), TIMEFRAME, settings, bundle, history)
        )
        for name, bundle in bundles.items()
    }
    times = {name: {s: [] for s in (*STAGES, "total", "cpu")} for name in bundles}
    for i in range(first, first + n):
        row = candles.iloc[i]
        bar = {SYMBOL: Bar(SYMBOL, candles.index[i], *map(float, row.to_numpy()))}
        for name, feed in feeds.items():
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            feed.at(i - first, bar)
            times[name]["cpu"].append(time.thread_time_ns() - c0)
            times[name]["total"].append(time.perf_counter_ns() - t0)
            strategy = feed.strategy
            assert isinstance(strategy, ModelBundleStrategy)
            for stage in STAGES:
                times[name][stage].append(strategy.timings[stage])
    return times


def meta_config(agents: list[str], args: argparse.Namespace) -> ModelConfig:
    regime = "hmm" if "hmm" in agents else None
    meta = {"agents": agents, "combiner": args.combiner, "regime_agent": regime}
    return ModelConfig.model_validate({"kind": "meta", "meta": meta})


def bundle_for(
    name: str, models: ModelConfig, head: pd.DataFrame, where: Path | None
) -> tuple[ModelBundle, float | None]:
    """The bundle trained on ``head`` (None: fit time unknown, loaded from ``where``)."""
    path = None if where is None else where / name.replace(" ", "_").replace(",", "")
    if path is not None and path.is_dir():
        return load_bundle(path, trust=True), None
    bundle, seconds = train(head, ExperimentConfig(features=FEATURES, models=models))
    if path is not None:
        save_bundle(bundle, path)
    return bundle, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=1000)
    parser.add_argument("--train", type=int, default=12000, help="training bars before them")
    parser.add_argument("--combiner", default="vote", choices=["vote", "confidence", "stack"])
    parser.add_argument(
        "--also-without", nargs="*", default=[], help="also a meta-agent without these kinds"
    )
    parser.add_argument("--bundles", type=Path, default=None, help="save / reuse bundles here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    candles = load_sample("BTC-USD-1h")[["open", "high", "low", "close", "volume"]]
    first = len(candles) - args.bars
    head = candles.iloc[first - args.train : first]
    usable, missing = agent_kinds()
    configs = [("lightgbm", ModelConfig()), ("meta (all agents)", meta_config(usable, args))]
    if args.also_without:
        fewer = [k for k in usable if k not in args.also_without]
        configs.append((f"meta (no {', '.join(args.also_without)})", meta_config(fewer, args)))
    bundles: dict[str, ModelBundle] = {}
    fit_s: dict[str, float | None] = {}
    for name, models in configs:
        bundles[name], fit_s[name] = bundle_for(name, models, head, args.bundles)
        print(f"{name}: fitted in {fit_s[name] or 0:.1f} s (0: loaded)", flush=True)
    times = replay(candles, first, args.bars, bundles)
    table = {name: {s: stats(v) for s, v in stages.items()} for name, stages in times.items()}
    for name, stages in table.items():
        for stage, s in stages.items():
            print(f"{name:<28} {stage:<9} p50={s['p50_ms']} p99={s['p99_ms']} max={s['max_ms']}")
    payload: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_before,
        "agents": usable,
        "combiner": args.combiner,
        "agents_missing": missing,
        "bars": args.bars,
        "train_bars": args.train,
        "fit_s": {k: None if v is None else round(v, 1) for k, v in fit_s.items()},
        "latency": table,
        "load_after": os.getloadavg(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
