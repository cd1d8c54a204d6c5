"""Typed feature-set configuration (the ``features:`` config section) and the default set.

This module only needs pydantic: the registry (TA-Lib, numba) is imported lazily, when specs are
validated against it, so loading the configuration stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aitrader.errors import ConfigError
from aitrader.frozen import Frozen

SPEC_VERSION = 1
"""Bumped whenever a change to the engine alters the values produced for the same spec."""

_TIMEFRAME = re.compile(r"^(\d+[smhdw]|x\d+)$")


class FeatureSpec(Frozen):
    """One feature in a set: a registered name, parameter overrides, optional higher timeframe.

    ``timeframe`` computes the feature on a higher timeframe, either absolute (``4h``, a
    multiple of the data's timeframe) or relative to the data (``x4``: four bars per bar).
    """

    name: str = Field(min_length=1)
    params: dict[str, bool | int | float | str] = Field(default_factory=dict)
    timeframe: str | None = None

    @field_validator("timeframe")
    @classmethod
    def _timeframe_form(cls, value: str | None) -> str | None:
        if value is not None and not _TIMEFRAME.match(value):
            raise ValueError(
                f"{value!r} is not a timeframe: use a ccxt timeframe such as 4h or 1d, "
                "or xN for N bars of the data's timeframe (e.g. x4)"
            )
        if value is not None and value.startswith("x") and int(value[1:]) < 2:
            raise ValueError("a relative timeframe needs a multiple of at least 2 (e.g. x4)")
        return value

    def label(self) -> str:
        """A short human-readable form, e.g. ``rsi(period=14)@4h``."""
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})" + (f"@{self.timeframe}" if self.timeframe else "")


def _spec(
    name: str, timeframe: str | None = None, **params: bool | int | float | str
) -> FeatureSpec:
    return FeatureSpec(name=name, params=dict(params), timeframe=timeframe)


DEFAULT_SET: tuple[FeatureSpec, ...] = (
    *(_spec("sma", period=p, relative=True) for p in (10, 20, 50, 200)),
    *(_spec("ema", period=p, relative=True) for p in (12, 26)),
    _spec("macd", relative=True),
    _spec("adx"),
    _spec("rsi"),
    _spec("stoch"),
    _spec("roc"),
    _spec("willr"),
    _spec("bbands", relative=True),
    _spec("atr", relative=True),
    _spec("keltner", relative=True),
    *(_spec("realized_vol", window=w) for w in (10, 20, 50, 100)),
    _spec("parkinson"),
    _spec("garman_klass"),
    _spec("garch"),
    _spec("vwap", relative=True),
    _spec("session_vwap", relative=True),
    _spec("obv"),
    _spec("volume_zscore"),
    _spec("anchored_vwap", relative=True),
    _spec("fibonacci"),
    *(_spec("return_moments", window=w) for w in (20, 100)),
    _spec("zscore"),
    _spec("pct_rank"),
    _spec("autocorr"),
    _spec("hurst"),
    _spec("sharpe"),
    _spec("drawdown"),
    _spec("trend_strength"),
    _spec("amihud"),
    _spec("roll_spread"),
    _spec("cs_spread"),
    _spec("kyle_lambda"),
    _spec("calendar"),
    _spec("rsi", timeframe="x4"),
    _spec("atr", timeframe="x4", relative=True),
)
"""The default feature set: every group, plus two higher-timeframe features."""

PRESETS: dict[str, tuple[FeatureSpec, ...]] = {"default": DEFAULT_SET, "none": ()}


class FeaturesConfig(Frozen):
    """Which features to build: a preset plus extra specs (appended in order)."""

    preset: Literal["default", "none"] = "default"
    extra: tuple[FeatureSpec, ...] = ()

    @field_validator("extra")
    @classmethod
    def _known_features(cls, value: tuple[FeatureSpec, ...]) -> tuple[FeatureSpec, ...]:
        if value:
            from aitrader.features.registry import resolve

            for spec in value:
                try:
                    resolve(spec.name, spec.params)
                except ConfigError as exc:
                    raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> FeaturesConfig:
        if not self.specs():
            raise ValueError("empty feature set: preset 'none' needs at least one 'extra' feature")
        return self

    def specs(self) -> tuple[FeatureSpec, ...]:
        """The feature specs this configuration asks for, in order."""
        return PRESETS[self.preset] + self.extra

    def spec_hash(self) -> str:
        """Stable SHA-256 of the resolved specs (see :func:`spec_hash`)."""
        return spec_hash(self.specs())


def canonical_specs(specs: tuple[FeatureSpec, ...] | list[FeatureSpec]) -> list[dict[str, Any]]:
    """Specs with every parameter filled in from the registry defaults (validated)."""
    from aitrader.features.registry import resolve

    out = []
    for spec in specs:
        _, params = resolve(spec.name, spec.params)
        out.append({"name": spec.name, "params": params.as_dict(), "timeframe": spec.timeframe})
    return out


def spec_hash(specs: tuple[FeatureSpec, ...] | list[FeatureSpec]) -> str:
    """SHA-256 hex digest of the canonical JSON of the resolved specs and :data:`SPEC_VERSION`.

    Equal for equal feature sets however they were written (defaults spelled out or not, key
    order), different when any name, parameter, timeframe or the order changes.
    """
    payload = {"version": SPEC_VERSION, "features": canonical_specs(specs)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
