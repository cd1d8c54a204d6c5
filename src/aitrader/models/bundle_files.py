"""A bundle's files: the fitted chain as JSON + arrays, a manifest of content hashes, trust.

Layout of a bundle directory (format 2):

* ``bundle.json`` — metadata (:class:`aitrader.models.registry.BundleInfo`);
* ``predictor.json`` + ``predictor.npz`` — the prediction chain: feature names, classes,
  scaler, calibrator, threshold, and the model's kind, parameters and files;
* the model's own files, written by its kind's codec (``model.txt`` for LightGBM, ``model.json``
  for XGBoost, ``model.json`` + ``model.npz`` for arrays, ``model.pkl`` only for kinds without a
  safe format);
* ``manifest.json`` — the sha256 of every other file, written last and checked on load.

Arrays are read with ``allow_pickle=False``. A pickle is read only when the caller trusts the
bundle (``trust=True``, ``--trust-bundle``), and whether a kind pickles is decided by the kind's
registered codec, never by the bundle's own files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from aitrader.errors import ConfigError, DataError
from aitrader.features.scaling import FeatureScaler
from aitrader.models import kinds
from aitrader.models.calibration import ProbabilityCalibrator
from aitrader.models.codecs import decode, encode, json_bytes, npz_bytes, read_npz, trusted
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model
from aitrader.models.predictor import Predictor

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESERVED = ("bundle.json", "predictor.json", "predictor.npz", MANIFEST)
OLD_PICKLE = "predictor.joblib"
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
_SCALER = ("method", "clip", "center_", "scale_", "n_features_in_", "feature_names_in_")


class BundleError(DataError):
    """A model bundle is missing, unreadable or does not fit the data it is used on."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_files(path: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``path`` (created), then the manifest of their hashes; files of the
    bundle previously there that are not rewritten are removed."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        stale = set(_listed(path)) | {OLD_PICKLE}
    except BundleError:  # a damaged bundle is being replaced: keep its unknown files
        stale = {OLD_PICKLE}
    for name, data in files.items():
        (path / name).write_bytes(data)
    for name in stale - set(files):
        (path / name).unlink(missing_ok=True)
    manifest = {"format": 2, "sha256": {name: sha256(data) for name, data in files.items()}}
    (path / MANIFEST).write_bytes(json_bytes(manifest))


def _listed(path: Path) -> dict[str, str]:
    try:
        listed = json.loads((path / MANIFEST).read_bytes())["sha256"]
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{path / MANIFEST}: unreadable manifest") from None
    if not isinstance(listed, dict) or not all(
        isinstance(n, str) and _FILE_NAME.match(n) and isinstance(h, str) for n, h in listed.items()
    ):
        raise BundleError(f"{path / MANIFEST}: the manifest lists an invalid file name or hash")
    return listed


def read_files(path: Path) -> dict[str, bytes]:
    """Every file the manifest lists, each checked against its sha256."""
    if not (path / MANIFEST).is_file():
        if (path / OLD_PICKLE).is_file():
            raise BundleError(
                f"{path}: an old-format bundle: {OLD_PICKLE} is a pickle, which can run code "
                "when loaded, and this version no longer reads it; retrain it with "
                f"`aitrader train DATA -o {path}` to write the safe format"
            )
        if not (path / "bundle.json").is_file():
            raise BundleError(f"{path}: not a model bundle (no bundle.json)")
        raise BundleError(f"{path}: no {MANIFEST} (incomplete bundle); retrain it")
    files: dict[str, bytes] = {}
    for name, expected in _listed(path).items():
        try:
            data = (path / name).read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{path / name}: listed in the manifest but missing") from None
        if sha256(data) != expected:
            raise BundleError(
                f"{path / name}: content does not match the manifest (sha256 {sha256(data)[:12]}"
                f"…, expected {expected[:12]}…): the file was changed after the bundle was "
                "written; restore it or retrain the bundle"
            )
        files[name] = data
    missing = [name for name in RESERVED[:-1] if name not in files]
    if missing:
        raise BundleError(f"{path}: the manifest does not list {', '.join(missing)}")
    return files


def model_spec(model: Any, files: dict[str, bytes], prefix: str = "") -> dict[str, Any]:
    """A fitted model as JSON (kind, parameters, seed, its file names); its codec's files go
    into ``files`` under ``prefix`` + name (a meta-agent stores its agents this way)."""
    kind = kinds.kind_of(model)
    written = kind.codec.dump(model)
    named = {prefix + n: n for n in written}
    bad = [n for n in named if n in RESERVED or n in files or not _FILE_NAME.match(n)]
    if bad:
        raise BundleError(f"model kind {kind.name!r}: its codec writes invalid file names {bad}")
    files.update({full: written[n] for full, n in named.items()})
    params = model.params or kind.params()
    return {
        "kind": kind.name,
        "params": params.model_dump(mode="json"),
        "seed": int(model.seed),
        "n_jobs": int(model.n_jobs),
        "files": sorted(written),
        "pickle": kind.codec.executable,
    }


def scaler_state(scaler: FeatureScaler, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """A fitted scaler as JSON; its arrays go into ``arrays`` under ``prefix``."""
    return {a: encode(getattr(scaler, a), f"{prefix}.{a}", arrays) for a in _SCALER}


def scaler_from_state(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureScaler:
    """The scaler :func:`scaler_state` described."""
    state = {a: decode(s, arrays) for a, s in spec.items()}
    scaler = FeatureScaler(state.pop("method"), state.pop("clip"))
    for attribute in _SCALER[2:]:
        setattr(scaler, attribute, state[attribute])
    return scaler


def _field(name: str, value: Any, arrays: dict[str, np.ndarray], files: dict[str, bytes]) -> Any:
    if name == "model":
        return {"model": model_spec(value, files)}
    if isinstance(value, FeatureScaler):
        return {"scaler": scaler_state(value, arrays, "scaler")}
    if isinstance(value, ProbabilityCalibrator):
        return {"calibrator": value.state(arrays, "calibrator")}
    try:
        return encode(value, name, arrays)
    except TypeError as exc:
        raise BundleError(f"cannot save predictor field {name!r}: {exc}") from None


def predictor_files(predictor: Predictor) -> dict[str, bytes]:
    """The prediction chain as ``predictor.json``, ``predictor.npz`` and the model's files."""
    arrays: dict[str, np.ndarray] = {}
    files: dict[str, bytes] = {}
    chain = {
        f.name: _field(f.name, getattr(predictor, f.name), arrays, files) for f in fields(predictor)
    }
    files["predictor.json"] = json_bytes(chain)
    files["predictor.npz"] = npz_bytes(arrays)
    return files


def _check_trust(kind: kinds.ModelKind[Any], files: list[str], path: Path, trust: bool) -> None:
    """BundleError unless a bundle holding a pickle is trusted; a warning when it is."""
    pickles = [name for name in files if name.endswith(".pkl")]
    if not (kind.codec.executable or pickles):
        return
    names = ", ".join(pickles or files)
    if not trust:
        safe = [n for n in kinds.names() if not kinds.get(n).codec.executable]
        raise BundleError(
            f"{path}: this {kind.name} bundle holds a pickle ({names}); loading a pickle can run "
            "any code. If you created the bundle yourself, pass --trust-bundle (trust=True in "
            "Python); otherwise retrain it, or use a kind saved in a safe format "
            f"({', '.join(safe)})"
        )
    log.warning(
        "%s: loading the pickled %s model (%s), trusted by the user", path, kind.name, names
    )


def load_model(
    spec: dict[str, Any], files: dict[str, bytes], path: Path, trust: bool, prefix: str = ""
) -> Any:
    """The fitted model :func:`model_spec` described (its files under ``prefix`` + name)."""
    try:
        name = str(spec["kind"])
        config = {"kind": name, "seed": spec["seed"], "n_jobs": spec["n_jobs"]}
        model = make_model(ModelConfig.model_validate(config | {name: spec["params"]}))
        kind = kinds.get(name)
    except (ConfigError, ValueError) as exc:
        raise BundleError(f"{path}: cannot rebuild the bundle's model: {exc}") from None
    names = [str(n) for n in spec["files"]]
    _check_trust(kind, names, path, trust)
    try:
        with trusted() if trust else nullcontext():
            return kind.codec.load(model, {n: files[prefix + n] for n in names})
    except BundleError:
        raise
    except Exception as exc:  # a library's own error for a file it cannot parse
        raise BundleError(
            f"{path}: cannot read the {kind.name} model files ({type(exc).__name__}: {exc}); "
            "retrain the bundle"
        ) from None


def _value(
    spec: dict[str, Any],
    arrays: dict[str, np.ndarray],
    files: dict[str, bytes],
    path: Path,
    trust: bool,
) -> Any:
    if "model" in spec:
        return load_model(spec["model"], files, path, trust)
    if "scaler" in spec:
        return scaler_from_state(spec["scaler"], arrays)
    if "calibrator" in spec:
        return ProbabilityCalibrator.from_state(spec["calibrator"], arrays)
    value = decode(spec, arrays)
    return value


def read_predictor(path: Path, files: dict[str, bytes], trust: bool = False) -> Predictor:
    """The prediction chain :func:`predictor_files` wrote (BundleError when unreadable)."""
    try:
        chain = json.loads(files["predictor.json"])
        arrays = read_npz(files["predictor.npz"])
        values = {
            f.name: _value(chain[f.name], arrays, files, path, trust) for f in fields(Predictor)
        }
    except BundleError:
        raise
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise BundleError(
            f"{path}: unreadable predictor ({type(exc).__name__}: {exc}); retrain the bundle"
        ) from None
    return Predictor(**values)
