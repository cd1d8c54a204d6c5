"""Shared pieces of the dashboard tests and benchmark: a small trained bundle, free ports,
processes started and stopped by their own ids, and waiting for an HTTP endpoint."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd

from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels import LabelConfig
from aitrader.models.config import ModelConfig

FEATURES = FeaturesConfig(preset="none", extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc")))


def small_bundle(path: Path) -> Path:
    """A logistic bundle on RSI and ROC (binary label), trained on BTC hours 8,000 to 3,000
    bars before the sample's end: the bars after it are out of its training window."""
    from aitrader.models.registry import save_bundle
    from aitrader.validation.experiment import ExperimentConfig, train_bundle
    from aitrader.validation.walkforward import prepare

    btc: pd.DataFrame = load_sample("BTC-USD-1h")
    labels = LabelConfig(kind="binary")
    prepared = prepare(btc.iloc[-8000:-3000], FEATURES, labels, CostsConfig())
    config = ExperimentConfig(features=FEATURES, labels=labels, models=ModelConfig(kind="logistic"))
    return save_bundle(train_bundle(prepared, config, "BTC/USD", "1h"), path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until ``url`` answers 200; RuntimeError if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process we started (by its own id), then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)
