"""Model bundles: size and save/load time of the safe format vs the old pickle, per kind.

One bundle per registered kind (default parameters) trained on the bundled BTC hourly set with
the default feature set (plus the persistence baseline's last-move sign). The safe format
(native booster files, JSON + npz, sha256 manifest checked on every load) is timed against
``joblib`` dumping and loading the same fitted chain, as bundles did before. Loading includes
the hash check and rebuilding the chain; predictions of the loaded chain are checked equal to
the original's. Medians and min–max over ``--repeats``.

Usage: python benchmarks/bench_bundles.py [--repeats 7]
Writes benchmarks/results/bundles.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models import kinds
from aitrader.models.config import ModelConfig
from aitrader.models.registry import ModelBundle, load_bundle, save_bundle
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import Prepared, prepare

RESULTS = Path(__file__).parent / "results" / "bundles.json"


def timed(action: Callable[[], Any], repeats: int) -> tuple[float, float, float, Any]:
    """Median, min and max seconds of ``repeats`` calls, and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), min(seconds), max(seconds), result


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def measure(kind: str, bundle: ModelBundle, prepared: Prepared, repeats: int) -> dict[str, Any]:
    rows = prepared.X.iloc[-1000:]
    expected = bundle.predictor.predict_proba(rows)
    trust = kinds.get(kind).codec.executable
    with tempfile.TemporaryDirectory() as tmp:
        safe, old = Path(tmp) / "safe", Path(tmp) / "predictor.joblib"
        save_safe = timed(lambda: save_bundle(bundle, safe), repeats)
        load_safe = timed(lambda: load_bundle(safe, trust=trust), repeats)
        save_old = timed(lambda: joblib.dump(bundle.predictor, old), repeats)
        load_old = timed(lambda: joblib.load(old), repeats)
        assert np.array_equal(load_safe[3].predictor.predict_proba(rows), expected)
        return {
            "kind": kind,
            "format": "pickle (trust)" if trust else "safe",
            "bytes": size(safe),
            "bytes_joblib": size(old),
            "save_s": save_safe[:3],
            "load_s": load_safe[:3],
            "save_joblib_s": save_old[:3],
            "load_joblib_s": load_old[:3],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    labels = LabelConfig()
    features = FeaturesConfig(extra=(FeatureSpec(name="trend_strength", params={"window": 2}),))
    prepared = prepare(load_sample("BTC-USD-1h"), features, labels, CostsConfig(), "1h")
    rows = []
    for kind in kinds.names():
        config = ExperimentConfig(labels=labels, models=ModelConfig(kind=kind))
        bundle = train_bundle(prepared, config)
        row = measure(kind, bundle, prepared, args.repeats)
        rows.append(row)
        print(
            f"{kind:14} {row['format']:15} {row['bytes'] / 1e3:9.1f} kB "
            f"(joblib {row['bytes_joblib'] / 1e3:9.1f} kB)  load {row['load_s'][0] * 1e3:8.1f} ms "
            f"(joblib {row['load_joblib_s'][0] * 1e3:8.1f} ms)"
        )
    payload = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "loadavg": os.getloadavg(),
        "rows": len(prepared.X),
        "columns": prepared.X.shape[1],
        "results": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
