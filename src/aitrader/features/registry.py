"""The feature registry: every feature's name, group, parameters (with defaults) and warm-up.

Built-in features live in :mod:`aitrader.features.catalog` and are loaded on first use. Tests and
extensions may :func:`register` more; the causality harness covers whatever is registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aitrader.errors import ConfigError
from aitrader.features.bars import Bars

ParamValue = int | float | bool | str

GROUPS: tuple[str, ...] = (
    "trend",
    "momentum",
    "volatility",
    "volume",
    "levels",
    "statistics",
    "microstructure",
    "calendar",
    "sentiment",
)


@dataclass(frozen=True)
class Param:
    """One parameter: its default (which fixes its type) and the allowed range or choices."""

    default: ParamValue
    lo: float | None = None
    hi: float | None = None
    help: str = ""

    def describe(self) -> str:
        kind = type(self.default).__name__
        bounds = ""
        if self.lo is not None or self.hi is not None:
            lo = "-inf" if self.lo is None else f"{self.lo:g}"
            hi = "inf" if self.hi is None else f"{self.hi:g}"
            bounds = f" in [{lo}, {hi}]"
        return f"{kind}{bounds}, default {self.default!r}"


class Params(Mapping[str, ParamValue]):
    """Resolved parameter values with typed accessors (read-only)."""

    def __init__(self, values: Mapping[str, ParamValue]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> ParamValue:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def integer(self, key: str) -> int:
        return int(self._values[key])

    def number(self, key: str) -> float:
        return float(self._values[key])

    def flag(self, key: str) -> bool:
        return bool(self._values[key])

    def as_dict(self) -> dict[str, ParamValue]:
        return dict(self._values)


Computer = Callable[[Bars, Params], list[np.ndarray]]


@dataclass(frozen=True)
class FeatureDef:
    """A registered feature. ``compute`` returns one array per name from ``columns``.

    ``warmup`` gives the number of leading rows that are not yet valid. When ``exact_warmup`` is
    false the warm-up is a lower bound (e.g. waiting for the first confirmed swing pivot).
    """

    name: str
    group: str
    summary: str
    params: Mapping[str, Param]
    columns: Callable[[Params], list[str]]
    warmup: Callable[[Params], int]
    compute: Computer
    exact_warmup: bool = True
    check: Callable[[Params], str | None] = field(default=lambda _p: None)

    def defaults(self) -> Params:
        return Params({k: p.default for k, p in self.params.items()})

    def describe(self) -> dict[str, Any]:
        """A JSON-safe description (for ``aitrader features list``)."""
        defaults = self.defaults()
        return {
            "name": self.name,
            "group": self.group,
            "summary": self.summary,
            "params": {k: p.default for k, p in self.params.items()},
            "param_help": {k: p.describe() for k, p in self.params.items()},
            "columns": self.columns(defaults),
            "warmup": self.warmup(defaults),
            "exact_warmup": self.exact_warmup,
        }


_REGISTRY: dict[str, FeatureDef] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in ("catalog", "catalog_stats", "news"):  # importing registers the built-ins
            importlib.import_module(f"aitrader.features.{module}")


def register(definition: FeatureDef, replace: bool = False) -> FeatureDef:
    """Add a feature to the registry; re-registering a name needs ``replace=True``."""
    if definition.group not in GROUPS:
        raise ConfigError(
            f"feature {definition.name!r}: unknown group {definition.group!r}; "
            f"groups: {', '.join(GROUPS)}"
        )
    if definition.name in _REGISTRY and not replace:
        raise ConfigError(f"feature {definition.name!r} is already registered")
    _REGISTRY[definition.name] = definition
    return definition


def column(
    prefix: str, key: str, suffix: Callable[[Params], str] = lambda _p: ""
) -> Callable[[Params], list[str]]:
    """A one-column namer: ``{prefix}_{params[key]}{suffix(params)}``."""
    return lambda p: [f"{prefix}_{p.integer(key)}{suffix(p)}"]


def offset(key: str, delta: int) -> Callable[[Params], int]:
    """A warm-up of ``params[key] + delta`` bars."""
    return lambda p: p.integer(key) + delta


def unregister(name: str) -> None:
    """Remove a feature (used by tests that register a temporary one)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """Every registered feature name, in registration order."""
    _load_builtins()
    return list(_REGISTRY)


def features() -> list[FeatureDef]:
    """Every registered feature definition, in registration order."""
    _load_builtins()
    return list(_REGISTRY.values())


def get(name: str) -> FeatureDef:
    """The definition of ``name``; ConfigError listing every known name otherwise."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown feature {name!r}; available features: {', '.join(sorted(_REGISTRY))} "
            "(see `aitrader features list`)"
        ) from None


def _coerce(feature: str, key: str, spec: Param, value: ParamValue) -> ParamValue:
    kind = type(spec.default)
    where = f"feature {feature!r}, parameter {key!r}"
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: {value!r} is not a {kind.__name__} ({spec.describe()})")
    coerced: ParamValue = float(value) if kind is float else value
    if isinstance(coerced, int | float) and not isinstance(coerced, bool):
        below = spec.lo is not None and coerced < spec.lo
        above = spec.hi is not None and coerced > spec.hi
        if below or above:
            raise ConfigError(f"{where}: {value!r} is out of range ({spec.describe()})")
    return coerced


def resolve(name: str, params: Mapping[str, ParamValue] | None = None) -> tuple[FeatureDef, Params]:
    """Validate ``params`` for feature ``name`` and fill in defaults; ConfigError on any problem,
    naming the feature and parameter and listing what is allowed.
    """
    definition = get(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(definition.params))
    if unknown:
        allowed = ", ".join(f"{k} ({p.describe()})" for k, p in definition.params.items())
        raise ConfigError(
            f"feature {name!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {allowed or 'none'}"
        )
    values = {
        key: _coerce(name, key, spec, given[key]) if key in given else spec.default
        for key, spec in definition.params.items()
    }
    resolved = Params(values)
    problem = definition.check(resolved)
    if problem:
        raise ConfigError(f"feature {name!r}: {problem}")
    return definition, resolved
