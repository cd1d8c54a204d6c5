"""Where strategies are found: built-ins, installed plug-ins and a user's own file or module.

``load_strategy(spec)`` takes a registered name (``sma-cross``), ``package.module:Class`` or
``path/to/file.py:Class``. Built-ins live one file each in :mod:`aitrader.strategies` and are
registered exactly like a user's strategy; installed packages add theirs through the
``aitrader.strategies`` entry-point group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from aitrader.errors import ConfigError
from aitrader.strategy.base import Strategy

ENTRY_POINTS = "aitrader.strategies"
_REGISTRY: dict[str, type[Strategy]] = {}
_LOADED = False


def register(cls: type[Strategy]) -> type[Strategy]:
    """Register a strategy class under its ``name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{cls!r} is not a Strategy subclass")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        where = f"{known.__module__}.{known.__qualname__}"
        raise ConfigError(f"strategy name {cls.name!r} is already taken by {where}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    """Import every module of :mod:`aitrader.strategies` and the installed plug-ins once."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import aitrader.strategies as package

    for info in pkgutil.iter_modules(package.__path__):
        _register_module(importlib.import_module(f"{package.__name__}.{info.name}"))
    for entry in entry_points(group=ENTRY_POINTS):
        register(entry.load())


def _builtin(name: str) -> type[Strategy] | None:
    """A built-in found by its module (``sma-cross`` lives in ``strategies/sma_cross.py``)
    without importing the others (the model strategy pulls in the whole ML stack)."""
    module_name = name.replace("-", "_")
    if not module_name.isidentifier():
        return None
    try:
        module = importlib.import_module(f"aitrader.strategies.{module_name}")
    except ModuleNotFoundError:
        return None
    _register_module(module)
    return _REGISTRY.get(name)


def _register_module(module: Any) -> None:
    """Register the strategies a built-in module defines (not those it imports)."""
    for value in vars(module).values():
        if _defined_in(value, module.__name__):
            register(value)


def _defined_in(value: Any, module: str) -> bool:
    return (
        isinstance(value, type)
        and issubclass(value, Strategy)
        and value is not Strategy
        and value.__module__ == module
    )


def strategies() -> dict[str, type[Strategy]]:
    """Every registered strategy by name (built-ins, plug-ins, and those registered so far)."""
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def strategy_class(spec: str) -> type[Strategy]:
    """The class a spec names: a registered name, ``module:Class`` or ``file.py:Class``."""
    if ":" not in spec:
        found = _REGISTRY.get(spec) or _builtin(spec)
        if found is not None:
            return found
        known = strategies()
        if spec in known:
            return known[spec]
        raise ConfigError(
            f"unknown strategy {spec!r}: use one of {', '.join(known)}, "
            "package.module:Class or path/to/file.py:Class"
        )
    where, _, name = spec.rpartition(":")
    module = _import_file(Path(where)) if where.endswith(".py") else _import_module(where)
    cls = getattr(module, name, None)
    if cls is None:
        raise ConfigError(f"strategy {spec!r}: {where} has no {name}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {spec!r}: {name} is not a subclass of aitrader Strategy")
    return cls


def load_strategy(spec: str, params: dict[str, Any] | None = None) -> Strategy:
    """An instance of the strategy ``spec`` names, with ``params`` (checked; ConfigError)."""
    return strategy_class(spec)(**(params or {}))


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"strategy module {name!r} cannot be imported: {exc}") from None


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"strategy file {path}: no such file")
    name = f"aitrader_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"strategy file {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ConfigError(f"strategy file {path}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # a user's module failing at import: name it, no traceback
        del sys.modules[name]
        raise ConfigError(f"strategy file {path}: {type(exc).__name__}: {exc}") from None
    return module


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``--param KEY=VALUE`` options as a dict (values are checked by the strategy)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r}: use KEY=VALUE, e.g. --param fast=20")
        out[key.strip()] = value.strip()
    return out
