"""Model bundles: a fitted prediction chain saved with everything needed to trust it later.

A bundle directory holds ``bundle.json`` (feature-spec hash and columns, label spec, training
and calibration windows, data checksum, library versions, metrics, and the decision tuned on
the calibration slice for the data set's symbol:timeframe), the prediction chain (scaler,
model, calibrator) in non-executable files, and a manifest
of content hashes checked on load (:mod:`aitrader.models.bundle_files`). Loading refuses a
changed file, a pickle unless the caller trusts the bundle, and a bundle whose feature-spec hash
differs from the data's.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aitrader.models.bundle_files import (
    BundleError,
    predictor_files,
    read_files,
    read_predictor,
    write_files,
)
from aitrader.models.predictor import Predictor
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.signals import SymbolThresholds

BUNDLE_FORMAT = 2
LIBRARIES = ("aitrader", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost", "scipy")


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour a saved model depends on."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class BundleInfo:
    """The metadata saved next to a fitted predictor (JSON-safe values only)."""

    feature_spec_hash: str
    feature_columns: list[str]
    label: dict[str, Any]
    label_name: str
    horizon: int
    model: dict[str, Any]
    train_window: tuple[str, str]
    calibration_window: tuple[str, str]
    data_checksum: str
    classes: list[float]
    metrics: dict[str, float] = field(default_factory=dict)
    signal_thresholds: dict[str, Any] | None = None  # SymbolThresholds as JSON; None: not tuned
    reference: dict[str, Any] | None = None  # drift reference (models.drift); None: older bundle
    versions: dict[str, str] = field(default_factory=library_versions)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    format: int = BUNDLE_FORMAT

    def thresholds(self) -> SymbolThresholds | None:
        """The signal thresholds tuned on the calibration slice (None: the bundle has none)."""
        if self.signal_thresholds is None:
            return None
        try:
            return SymbolThresholds.model_validate(self.signal_thresholds)
        except ValueError as exc:
            raise BundleError(f"unreadable signal thresholds in the bundle ({exc})") from None


@dataclass(frozen=True)
class ModelBundle:
    """A fitted predictor and its metadata."""

    predictor: Predictor
    info: BundleInfo

    def check_features(self, spec_hash: str) -> None:
        """Raise BundleError unless ``spec_hash`` is the feature spec the model was trained on."""
        if spec_hash != self.info.feature_spec_hash:
            raise BundleError(
                f"model bundle was trained on feature spec {self.info.feature_spec_hash[:12]} "
                f"but the data uses {spec_hash[:12]}; rebuild the features with the bundle's "
                "feature set or retrain the model"
            )


def apply_thresholds(
    info: BundleInfo, config: SignalConfig, symbol: str | None, timeframe: str | None
) -> tuple[SignalConfig, str]:
    """``config`` with the bundle's tuned thresholds applied (:func:`with_tuned`) when they were
    tuned for ``symbol``:``timeframe``, and a line saying what is in use."""
    tuned = info.thresholds()
    where = f"{symbol}:{timeframe}"
    if tuned is None:
        return config, f"{where}: config thresholds (the model bundle has no tuned thresholds)"
    if not tuned.applies_to(symbol, timeframe):
        return config, (
            f"{where}: config thresholds (the bundle's tuned thresholds are for {tuned.key})"
        )
    if not tuned.reached:
        return tuned.apply(config), f"tuned thresholds in use, no trades: {tuned.describe()}"
    return tuned.apply(config), f"tuned thresholds in use: {tuned.describe()}"


def save_bundle(bundle: ModelBundle, directory: Path | str) -> Path:
    """Write the bundle into ``directory`` (created; a bundle already there is replaced)."""
    path = Path(directory).expanduser()
    files = predictor_files(bundle.predictor)
    text = json.dumps(asdict(bundle.info), indent=2, sort_keys=True, allow_nan=True)
    write_files(path, files | {"bundle.json": (text + "\n").encode()})
    return path


def _read_info(path: Path, data: bytes) -> BundleInfo:
    try:
        raw = json.loads(data)
        raw["train_window"] = tuple(raw["train_window"])
        raw["calibration_window"] = tuple(raw["calibration_window"])
        return BundleInfo(**raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise BundleError(f"{path / 'bundle.json'}: unreadable bundle metadata ({exc})") from None


def load_bundle(
    directory: Path | str, spec_hash: str | None = None, trust: bool = False
) -> ModelBundle:
    """Read a bundle, checking every file against the manifest; with ``spec_hash``, refuse it
    unless the feature specs match. ``trust`` allows kinds saved as a pickle (it runs code).
    A model store entry (:mod:`aitrader.models.store`) means its champion's bundle."""
    from aitrader.models.store import resolve_champion

    path = resolve_champion(Path(directory).expanduser())
    files = read_files(path)
    info = _read_info(path, files["bundle.json"])
    if info.format != BUNDLE_FORMAT:
        raise BundleError(f"{path}: bundle format {info.format}, readable: {BUNDLE_FORMAT}")
    info.thresholds()  # unreadable tuned thresholds: BundleError now, not at first use
    bundle = ModelBundle(read_predictor(path, files, trust), info)
    if spec_hash is not None:
        bundle.check_features(spec_hash)
    return bundle


def load_info(directory: Path | str) -> BundleInfo:
    """A bundle's metadata only (files checked against the manifest; the model is not read).
    A model store entry means its champion's bundle."""
    from aitrader.models.store import resolve_champion

    path = resolve_champion(Path(directory).expanduser())
    return _read_info(path, read_files(path)["bundle.json"])
