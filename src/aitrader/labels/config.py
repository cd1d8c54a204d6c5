"""The label spec (:class:`LabelConfig`, the ``labels:`` config section): which label a model
learns and its parameters. Light to import (pydantic only), so :mod:`aitrader.config` holds it in
its ``Settings``; :mod:`aitrader.labels.build` makes the labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from aitrader.errors import ConfigError
from aitrader.frozen import Frozen

ConfigKind = Literal["direction3", "binary", "forward_return", "triple_barrier"]
ONLY_FOR: dict[str, str] = {
    "neutral_band": "direction3",
    "log_returns": "forward_return",
    "take_profit": "triple_barrier",
    "stop_loss": "triple_barrier",
    "atr_period": "triple_barrier",
    "side": "triple_barrier",
}
"""Options that apply to one label kind only (giving them for another kind is an error)."""


class LabelConfig(Frozen):
    """Which label to build and its parameters (validated once, at the edge)."""

    kind: ConfigKind = Field(
        "direction3", description="direction3, binary, forward_return or triple_barrier"
    )
    horizon: int = Field(1, ge=1, le=100_000, description="bars ahead (vertical barrier for TB)")
    neutral_band: float | None = Field(
        None, ge=0, lt=1, description="direction3 dead zone as a return; None = round-trip cost"
    )
    log_returns: bool = Field(False, description="forward_return: log instead of simple returns")
    take_profit: float = Field(2.0, gt=0, le=1000, description="triple barrier: ATR multiple")
    stop_loss: float = Field(2.0, gt=0, le=1000, description="triple barrier: ATR multiple")
    atr_period: int = Field(14, ge=1, le=10_000, description="triple barrier: TA-Lib ATR period")
    side: Literal[1, -1] = Field(1, description="triple barrier: 1 long, -1 short")

    @field_validator(*ONLY_FOR)
    @classmethod
    def _option_fits_kind(cls, value: Any, info: ValidationInfo) -> Any:
        wanted = ONLY_FOR[str(info.field_name)]
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind != wanted:
            raise ValueError(f"applies only to kind {wanted!r}, not {kind!r}")
        return value

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], origin: str = "labels") -> LabelConfig:
        """Validate a mapping (e.g. a YAML section); raises ConfigError naming each bad key."""
        from aitrader.config import format_validation_error  # imported late: config imports us

        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, origin)) from None
