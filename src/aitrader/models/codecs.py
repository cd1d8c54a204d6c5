"""Bundle codecs: fitted state as JSON and numpy arrays (never pickle unless a kind needs it).

:func:`encode` turns plain values (None, numbers, strings, tuples/lists of them, numeric numpy
arrays, string arrays) into JSON plus named arrays; :func:`decode` reverses it. Arrays travel in
``.npz`` files read with ``allow_pickle=False``. :class:`AttributesCodec` saves a model's fitted
attributes that way; :class:`PickleCodec` is for kinds whose state has no safe format and is
only loaded from bundles the user trusts.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

Scalar = None | bool | int | float | str
_SCALARS = (type(None), bool, int, float, str)


def encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``value`` as JSON; numeric arrays are stored in ``arrays`` under ``key``.

    TypeError for anything that is not plain data (objects must be saved by their own codec).
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            arrays[key] = value
            return {"array": key}
        if value.dtype.kind in "OU" and all(isinstance(v, str) for v in value.ravel()):
            return {"strings": [str(v) for v in value.ravel()], "shape": list(value.shape)}
        raise TypeError(f"{key}: array of dtype {value.dtype} has no safe format")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _SCALARS):
        return {"value": value}
    if isinstance(value, tuple | list):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        if all(isinstance(v, _SCALARS) for v in items):
            return {"tuple" if isinstance(value, tuple) else "list": items}
    raise TypeError(f"{key}: a {type(value).__name__} has no safe format")


def decode(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Any:
    """The value :func:`encode` described by ``spec`` (KeyError/ValueError when malformed)."""
    if "array" in spec:
        return np.asarray(arrays[str(spec["array"])])
    if "strings" in spec:
        return np.asarray(spec["strings"], dtype=object).reshape(spec["shape"])
    if "tuple" in spec:
        return tuple(spec["tuple"])
    if "list" in spec:
        return list(spec["list"])
    if "value" in spec:
        return spec["value"]
    raise ValueError(f"unknown value encoding {sorted(spec)}")


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays as the bytes of an uncompressed ``.npz`` file."""
    buffer = io.BytesIO()
    np.savez(buffer, **cast(dict[str, Any], dict(arrays)))
    return buffer.getvalue()


def read_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` bytes; object arrays are refused (``allow_pickle=False``)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return {name: loaded[name] for name in loaded.files}


def json_bytes(value: Any) -> bytes:
    """Indented, key-sorted JSON bytes with a final newline."""
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _resolve(obj: Any, dotted: str) -> tuple[Any, str]:
    *path, last = dotted.split(".")
    for part in path:
        obj = getattr(obj, part)
    return obj, last


@dataclass(frozen=True)
class AttributesCodec:
    """Saves the named fitted attributes (dotted paths reach into a wrapped estimator) as
    ``<stem>.json`` and ``<stem>.npz``; ``prepare`` readies an unfitted model before loading
    (e.g. builds the wrapped estimator whose attributes are restored)."""

    attributes: tuple[str, ...]
    stem: str = "model"
    prepare: Callable[[Any], None] | None = None
    executable: bool = False

    def dump(self, model: Any) -> dict[str, bytes]:
        arrays: dict[str, np.ndarray] = {}
        meta = {}
        for name in self.attributes:
            owner, attribute = _resolve(model, name)
            meta[name] = encode(getattr(owner, attribute), name, arrays)
        return {f"{self.stem}.json": json_bytes(meta), f"{self.stem}.npz": npz_bytes(arrays)}

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        meta = json.loads(files[f"{self.stem}.json"])
        arrays = read_npz(files[f"{self.stem}.npz"])
        if self.prepare is not None:
            self.prepare(model)
        for name in self.attributes:
            owner, attribute = _resolve(model, name)
            setattr(owner, attribute, decode(meta[name], arrays))
        return model


_TRUSTED: ContextVar[bool] = ContextVar("aitrader_trusted_bundle", default=False)


@contextmanager
def trusted() -> Iterator[None]:
    """Inside this block :class:`PickleCodec` may unpickle (the user trusts the bundle)."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted() -> bool:
    """Whether the bundle being loaded is trusted (inside :func:`trusted`)."""
    return _TRUSTED.get()


@dataclass(frozen=True)
class PickleCodec:
    """The whole fitted model as a pickle (``model.pkl``): loading it can run code, so it loads
    only inside :func:`trusted` (``trust=True``, ``--trust-bundle``), also when a composite kind
    (an ensemble of agents) calls it for one of its parts."""

    executable: bool = True

    def dump(self, model: Any) -> dict[str, bytes]:
        return {"model.pkl": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)}

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        if not _TRUSTED.get():
            raise PermissionError("refusing to unpickle model.pkl: the bundle is not trusted")
        loaded = pickle.loads(files["model.pkl"])
        if type(loaded) is not type(model):
            raise TypeError(
                f"model.pkl holds a {type(loaded).__name__}, not a {type(model).__name__}"
            )
        return loaded


SHAPES = AttributesCodec(("classes_", "n_features_in_"), stem="classes")


@dataclass(frozen=True)
class BoosterCodec:
    """A library's own model format for the fitted ``booster_`` (``write`` gives its bytes,
    ``read(data, model)`` the booster back) plus the class list as JSON + arrays."""

    file: str
    write: Callable[[Any], bytes]
    read: Callable[[bytes, Any], Any]
    executable: bool = False

    def dump(self, model: Any) -> dict[str, bytes]:
        return SHAPES.dump(model) | {self.file: self.write(model.booster_)}

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        model.booster_ = self.read(files[self.file], model)
        return SHAPES.load(model, files)


@dataclass(frozen=True)
class StateCodec:
    """For a model that writes its fitted state itself as safe files (JSON, ``.npz``, a
    library's text format): ``model.state_files()`` gives name → bytes and
    ``model.load_state(files)`` restores it."""

    executable: bool = False

    def dump(self, model: Any) -> dict[str, bytes]:
        return cast(dict[str, bytes], model.state_files())

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any:
        model.load_state(files)
        return model
