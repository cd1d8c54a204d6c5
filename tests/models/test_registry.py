"""Bundles are plain files with a hash manifest: every kind round-trips exactly, a changed file
is refused, a pickle (a kind without a safe format, or an old bundle) never loads without the
user's trust, and data built with a different feature spec is refused."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from aitrader.cli.backtest import backtest_command
from aitrader.cli.scan import scan_command
from aitrader.cli.strategy import StrategyChoice
from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec, spec_hash
from aitrader.labels.config import LabelConfig
from aitrader.models import kinds
from aitrader.models.codecs import PickleCodec
from aitrader.models.config import ModelConfig
from aitrader.models.predictor import Predictor
from aitrader.models.registry import BundleError, ModelBundle, load_bundle, save_bundle
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import Prepared, prepare

SPECS = [
    FeatureSpec(name="rsi"),
    FeatureSpec(name="roc"),
    FeatureSpec(name="trend_strength", params={"window": 2}),
    FeatureSpec(name="lags"),  # the window the sequence agents (hmm, garch, quantile) read
]
SMALL = {"lightgbm": {"n_estimators": 15}, "xgboost": {"n_estimators": 15}}
SMALL |= {"quantile": {"n_estimators": 15}}
SMALL |= {"random_forest": {"n_estimators": 10}}


def candles(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    index = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0},
        index=index,
    )


@pytest.fixture(scope="module", params=["direction3", "binary"])
def prepared(request: pytest.FixtureRequest) -> tuple[Prepared, LabelConfig]:
    labels = LabelConfig(kind=request.param)
    return prepare(candles(), SPECS, labels, CostsConfig()), labels


def bundle_of(kind: str, prepared: Prepared, labels: LabelConfig) -> ModelBundle:
    models = ModelConfig.model_validate({"kind": kind, **SMALL})
    return train_bundle(prepared, ExperimentConfig(labels=labels, models=models))


@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_round_trips_exactly(
    kind: str, prepared: tuple[Prepared, LabelConfig], tmp_path: Path
) -> None:
    data, labels = prepared
    bundle = bundle_of(kind, data, labels)
    path = save_bundle(bundle, tmp_path / kind)
    pickled = kinds.get(kind).codec.executable
    loaded = load_bundle(path, spec_hash=data.spec_hash, trust=pickled)
    np.testing.assert_array_equal(
        loaded.predictor.predict_proba(data.X), bundle.predictor.predict_proba(data.X)
    )
    np.testing.assert_array_equal(loaded.predictor.classes, bundle.predictor.classes)
    for field in fields(Predictor):  # every plain field of the chain comes back equal
        if field.name not in ("model", "scaler", "calibrator", "classes"):
            assert getattr(loaded.predictor, field.name) == getattr(bundle.predictor, field.name)
    assert loaded.info == bundle.info
    written = {p.name for p in path.iterdir()}
    assert ("model.pkl" in written) == pickled  # a pickle only where the kind has no safe format
    assert not {n for n in written if n.endswith((".joblib", ".pickle"))}


def test_metadata_describes_the_training(
    prepared: tuple[Prepared, LabelConfig], tmp_path: Path
) -> None:
    data, labels = prepared
    path = save_bundle(bundle_of("lightgbm", data, labels), tmp_path / "model")
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["feature_spec_hash"] == spec_hash(SPECS) and meta["format"] == 2
    assert meta["label"]["kind"] == labels.kind and meta["horizon"] == 1
    assert meta["train_window"][1] < meta["calibration_window"][0]
    assert {"lightgbm", "scikit-learn", "numpy"} <= set(meta["versions"])
    assert "threshold" not in meta  # the deleted vectorised rule; the decision is tuned per market
    other = spec_hash([*SPECS, FeatureSpec(name="atr")])
    with pytest.raises(BundleError, match=r"trained on feature spec \w+ but the data uses"):
        load_bundle(path, spec_hash=other)


def test_not_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)


@pytest.fixture(scope="module")
def lightgbm_bundle(prepared: tuple[Prepared, LabelConfig]) -> ModelBundle:
    return bundle_of("lightgbm", *prepared)


def test_native_formats_are_readable_text(lightgbm_bundle: ModelBundle, tmp_path: Path) -> None:
    path = save_bundle(lightgbm_bundle, tmp_path / "b")
    assert (path / "model.txt").read_text().startswith("tree\nversion=")
    manifest = json.loads((path / "manifest.json").read_text())
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((path / name).read_bytes()).hexdigest() == digest
    assert set(manifest["sha256"]) == {p.name for p in path.iterdir()} - {"manifest.json"}


@pytest.mark.parametrize("name", ["model.txt", "bundle.json", "predictor.json", "predictor.npz"])
def test_a_changed_file_is_refused_by_name(
    name: str, lightgbm_bundle: ModelBundle, tmp_path: Path
) -> None:
    path = save_bundle(lightgbm_bundle, tmp_path / "b")
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 1  # one flipped bit
    (path / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{name}: content does not match the manifest"):
        load_bundle(path)


def test_missing_file_and_bad_manifest_are_clear_errors(
    lightgbm_bundle: ModelBundle, tmp_path: Path
) -> None:
    path = save_bundle(lightgbm_bundle, tmp_path / "b")
    (path / "model.txt").unlink()
    with pytest.raises(BundleError, match=r"model\.txt: listed in the manifest but missing"):
        load_bundle(path)
    (path / "manifest.json").write_text(json.dumps({"sha256": {"../../etc/passwd": "0"}}))
    with pytest.raises(BundleError, match="invalid file name"):
        load_bundle(path)


class _Marker:
    """Unpickling it creates a directory: proof that a pickle ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


def _rehash(path: Path, name: str) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_object_arrays_never_unpickle_even_with_a_consistent_manifest(
    lightgbm_bundle: ModelBundle, tmp_path: Path
) -> None:
    path = save_bundle(lightgbm_bundle, tmp_path / "b")
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    np.savez(buffer, classes=np.array([_Marker(marker)], dtype=object), allow_pickle=True)
    (path / "predictor.npz").write_bytes(buffer.getvalue())
    _rehash(path, "predictor.npz")  # an attacker who rewrites the manifest too
    with pytest.raises(BundleError, match="unreadable predictor"):
        load_bundle(path, trust=True)
    assert not marker.exists()


def test_pickle_kind_needs_trust(
    prepared: tuple[Prepared, LabelConfig], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = bundle_of("random_forest", *prepared)
    path = save_bundle(bundle, tmp_path / "forest")
    with pytest.raises(BundleError, match=r"holds a pickle \(model.pkl\).*--trust-bundle"):
        load_bundle(path)
    with caplog.at_level(logging.WARNING):
        loaded = load_bundle(path, trust=True)
    assert "loading the pickled random_forest model" in caplog.text
    X = prepared[0].X
    np.testing.assert_array_equal(
        loaded.predictor.predict_proba(X), bundle.predictor.predict_proba(X)
    )
    choice = StrategyChoice(model=path)
    with pytest.raises(BundleError, match="--trust-bundle"):
        choice.describe()
    assert StrategyChoice(model=path, trust_bundle=True).describe()["model"] == str(path)


def test_pickle_codec_refuses_outside_a_trusted_load(tmp_path: Path) -> None:
    """Also when a composite kind (an ensemble) loads a pickled part through its own codec."""
    marker = tmp_path / "ran"
    with pytest.raises(PermissionError, match="not trusted"):
        PickleCodec().load(object(), {"model.pkl": pickle.dumps(_Marker(marker))})
    assert not marker.exists()


def test_old_joblib_bundle_is_refused_with_the_fix(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "bundle.json").write_text(json.dumps({"format": 1}))
    (tmp_path / "predictor.joblib").write_bytes(pickle.dumps(_Marker(marker)))
    for trust in (False, True):
        with pytest.raises(BundleError, match=r"old-format bundle.*aitrader train DATA -o"):
            load_bundle(tmp_path, trust=trust)
    assert not marker.exists()


def test_saving_over_a_bundle_of_another_kind_leaves_no_stale_file(
    prepared: tuple[Prepared, LabelConfig], lightgbm_bundle: ModelBundle, tmp_path: Path
) -> None:
    path = save_bundle(bundle_of("random_forest", *prepared), tmp_path / "b")
    save_bundle(lightgbm_bundle, path)
    assert not (path / "model.pkl").exists()
    assert load_bundle(path).info.model["kind"] == "lightgbm"


def test_scan_and_backtest_load_a_pickle_bundle_only_with_trust_bundle(tmp_path: Path) -> None:
    btc = load_sample("BTC-USD-1h")
    features = FeaturesConfig(
        preset="none", extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc"))
    )
    models = ModelConfig.model_validate({"kind": "random_forest", **SMALL})
    config = ExperimentConfig(features=features, labels=LabelConfig(kind="binary"), models=models)
    prepared = prepare(btc.iloc[-4000:-1500], features, config.labels, CostsConfig())
    path = save_bundle(train_bundle(prepared, config), tmp_path / "bundle")
    app = typer.Typer()
    app.command("scan")(scan_command)
    app.command("backtest")(backtest_command)
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store"), "COLUMNS": "200"}
    commands = (
        ["scan", "sample:BTC-USD-1h", "--model", str(path), "--bars", "1500", "--json"],
        ["backtest", "sample:BTC-USD-1h", "--model", str(path), "--start", "2022-10-01", "--json"],
    )
    outputs = []
    for args in commands:
        refused = CliRunner().invoke(app, args, env=env)
        assert isinstance(refused.exception, BundleError), refused.output
        assert "pass --trust-bundle" in str(refused.exception)
        trusted = CliRunner().invoke(app, [*args, "--trust-bundle"], env=env)
        assert trusted.exit_code == 0, trusted.output
        outputs.append(json.loads(trusted.stdout))
    (result,) = outputs[0]["results"]
    assert result["source"].startswith(f"model bundle {path} (random_forest")
