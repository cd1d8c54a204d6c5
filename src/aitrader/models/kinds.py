"""The model-kind registry: each kind declares itself once, in its own module.

A :class:`ModelKind` names the estimator class, its parameter model (pydantic, every field with
a default), its Optuna search space, whether it reads raw (unscaled) features, how a fitted
model is written to and read from a bundle (:class:`Codec`) and the optional-dependency extra
it needs. The factory, config validation, tuning, the CLI help and bundle save/load all read
the registry; nothing else lists kinds.

Adding a built-in kind: write its module (ending in ``register(ModelKind(...))``) and add the
module to :data:`BUILTINS`. Another package adds kinds through the ``aitrader.models``
entry-point group (``name = "package.module"``); tests may :func:`register` one directly.

Kind modules must stay light to import (the configuration validates against the registry):
import heavy libraries (lightgbm, scikit-learn, torch) inside ``fit`` and the codec. Process pools
(``validation.n_jobs``, ``tuning.workers`` > 1) start fresh interpreters, which know the built-in
and entry-point kinds but not one registered by hand in the parent process.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from optuna.trial import Trial

BUILTINS: tuple[str, ...] = (
    "aitrader.models.gbm",
    "aitrader.models.forest",
    "aitrader.models.linear",
    "aitrader.models.baselines",
    "aitrader.models.xgb",
    "aitrader.models.hmm",
    "aitrader.models.garch",
    "aitrader.models.quantile",
    "aitrader.models.meta",
    "aitrader.models.deep",
)
"""Modules whose import registers the built-in kinds, in the order they are listed."""

ENTRY_POINT_GROUP = "aitrader.models"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

P = TypeVar("P", bound=BaseModel)


class Codec(Protocol):
    """How a fitted model of a kind becomes bundle files and back.

    ``dump`` returns file name → content; ``load`` restores a fitted model into ``model`` (an
    unfitted instance built from the saved parameters) from those files and returns it.
    ``executable`` is true when loading can run code (pickle): such bundles load only when the
    user trusts them.
    """

    @property
    def executable(self) -> bool: ...

    def dump(self, model: Any) -> dict[str, bytes]: ...

    def load(self, model: Any, files: Mapping[str, bytes]) -> Any: ...


@dataclass(frozen=True)
class ModelKind(Generic[P]):
    """A registered model kind.

    ``estimator(params, seed=..., n_jobs=...)`` builds an unfitted classifier following the
    scikit-learn estimator rules; it is a class, usually a
    :class:`aitrader.models.base.ClassifierBase`, which keeps the three arguments as attributes
    of those names. ``space`` maps an Optuna trial to parameter values (None: nothing to tune).
    ``raw_features`` kinds get unscaled features. ``extra`` is the ``pip install
    'aitrader[extra]'`` that provides the modules in ``requires``. ``features(params)`` lists the
    feature specs the kind reads (the sequence agents' ``lags`` window).
    """

    name: str
    summary: str
    estimator: type[Any]
    params: type[P]
    codec: Codec
    space: Callable[[Trial], dict[str, Any]] | None = None
    raw_features: bool = False
    extra: str | None = None
    requires: tuple[str, ...] = ()
    features: Callable[[Any], list[dict[str, Any]]] | None = None

    def required_features(self, params: BaseModel | None = None) -> list[dict[str, Any]]:
        """Feature specs (``{"name", "params"}``) this kind reads with ``params``; an experiment
        adds those its feature set lacks."""
        return [] if self.features is None else self.features(params or self.params())

    def build(self, params: BaseModel | None, seed: int, n_jobs: int) -> Any:
        """An unfitted estimator (ConfigError naming the extra when a dependency is missing)."""
        self.check_available()
        return self.estimator(params or self.params(), seed=seed, n_jobs=n_jobs)

    def validate_params(self, value: Any) -> P:
        """``value`` (a mapping or an instance) as this kind's parameters; ValueError naming
        the parameter otherwise."""
        if isinstance(value, self.params):
            return value
        try:
            return self.params.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(problems) from None

    def missing(self) -> list[str]:
        """The modules in ``requires`` that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def check_available(self) -> None:
        """ConfigError with the install command when a module in ``requires`` is missing."""
        missing = self.missing()
        if missing:
            hint = f"pip install 'aitrader[{self.extra}]'" if self.extra else "install them"
            raise ConfigError(
                f"model kind {self.name!r} needs the {', '.join(missing)} package: {hint}, "
                "or choose another model kind"
            )

    def describe(self) -> dict[str, Any]:
        """A JSON-safe description (for ``aitrader models kinds``)."""
        return {
            "name": self.name,
            "summary": self.summary,
            "params": self.params().model_dump(mode="json"),
            "tunable": self.space is not None,
            "raw_features": self.raw_features,
            "features": self.required_features(),
            "extra": self.extra,
            "installed": not self.missing(),
            "bundle": "pickle (needs --trust-bundle)" if self.codec.executable else "safe",
        }


_REGISTRY: dict[str, ModelKind[Any]] = {}
_loaded = {"builtins": False, "plugins": False}


def _load_builtins() -> None:
    if not _loaded["builtins"]:
        _loaded["builtins"] = True
        for module in BUILTINS:
            importlib.import_module(module)


def _load_plugins() -> None:
    _load_builtins()
    if not _loaded["plugins"]:
        _loaded["plugins"] = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                importlib.import_module(point.value)
            except ImportError as exc:
                raise ConfigError(
                    f"model plug-in {point.name!r} ({point.value}) failed to import: {exc}"
                ) from None


def register(kind: ModelKind[Any], replace: bool = False) -> ModelKind[Any]:
    """Add a kind; re-registering a name needs ``replace=True``."""
    from aitrader.models.config import ModelConfig

    if not _NAME.match(kind.name) or kind.name in ModelConfig.model_fields:
        raise ConfigError(
            f"model kind name {kind.name!r}: use lower-case letters, digits and '_' (at most "
            f"40), not one of the model settings ({', '.join(ModelConfig.model_fields)})"
        )
    if kind.name in _REGISTRY and not replace:
        raise ConfigError(f"model kind {kind.name!r} is already registered")
    try:
        kind.params()
    except ValidationError:
        raise ConfigError(
            f"model kind {kind.name!r}: every field of {kind.params.__name__} needs a default"
        ) from None
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (used by tests that register a temporary one)."""
    _REGISTRY.pop(name, None)


def find(name: str) -> ModelKind[Any] | None:
    """The kind called ``name``, or None (built-ins first, then plug-ins)."""
    _load_builtins()
    if name not in _REGISTRY:
        _load_plugins()
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Every registered kind, built-ins first in :data:`BUILTINS` order."""
    _load_plugins()

    def rank(kind: ModelKind[Any]) -> int:
        module = getattr(kind.estimator, "__module__", "")
        package = module.rpartition(".")[0]  # a built-in package registers its modules' kinds
        found = module if module in BUILTINS else package
        return BUILTINS.index(found) if found in BUILTINS else len(BUILTINS)

    return [kind.name for kind in sorted(_REGISTRY.values(), key=rank)]


def unknown(name: str) -> str:
    """The message for a kind nobody registered."""
    available = ", ".join(names())
    return f"unknown model kind {name!r}; available: {available} (see `aitrader models kinds`)"


def get(name: str) -> ModelKind[Any]:
    """The kind called ``name``; ConfigError listing the available kinds otherwise."""
    kind = find(name)
    if kind is None:
        raise ConfigError(unknown(name))
    return kind


def kind_of(model: Any) -> ModelKind[Any]:
    """The kind whose estimator built ``model`` (ConfigError when none did)."""
    _load_builtins()
    for kind in _REGISTRY.values():
        if type(model) is kind.estimator:
            return kind
    raise ConfigError(f"{type(model).__name__} is not the estimator of a registered model kind")
