"""Typed, frozen configuration of models and their calibration."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from aitrader.frozen import Frozen


class _Invalid:
    """A kind section that failed validation, carried to its own key so that the error names
    ``models.<section>`` (a model-level error would print the whole section instead)."""

    def __init__(self, value: Any, message: str) -> None:
        self.value, self.message = value, message

    def __repr__(self) -> str:
        return repr(self.value)


def _valid_section(value: Any) -> Any:
    if isinstance(value, _Invalid):
        raise ValueError(value.message)
    return value


class ModelConfig(Frozen):
    """Which model kind to fit, with its scaler and calibrator.

    Each kind's parameters sit in a section named after it (``lightgbm: {n_estimators: 300}``);
    any registered kind may have one (see :mod:`aitrader.models.kinds`), and
    :meth:`params` returns the section of ``kind`` with its defaults filled in.
    """

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, Annotated[Any, AfterValidator(_valid_section)]] = Field(
        init=False
    )

    kind: str = "lightgbm"
    seed: int = Field(42, ge=0, description="random seed of every stochastic step")
    n_jobs: int = Field(1, ge=1, le=256, description="threads per model fit")
    scaler: Literal["standard", "robust", "none"] = "robust"
    scaler_clip: float | None = Field(10.0, gt=0, description="clip scaled values to ±clip")
    calibration: Literal["isotonic", "sigmoid", "none"] = "sigmoid"

    @model_validator(mode="before")
    @classmethod
    def _kind_sections(cls, data: Any) -> Any:
        """Validate every section named after a kind with that kind's parameter model."""
        if not isinstance(data, dict):
            return data
        sections = [key for key in data if key not in cls.model_fields]
        if not sections:
            return data
        from aitrader.models import kinds

        out = dict(data)
        for key in sections:
            kind = kinds.find(str(key))
            if key in MOVED:
                out[key] = _Invalid(data[key], MOVED[key])
            elif kind is None:
                out[key] = _Invalid(
                    data[key],
                    f"neither a model setting ({', '.join(cls.model_fields)}) nor a model kind "
                    f"({', '.join(kinds.names())})",
                )
            else:
                try:
                    out[key] = kind.validate_params(data[key])
                except ValueError as exc:
                    out[key] = _Invalid(data[key], str(exc))
        return out

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from aitrader.models import kinds

        if kinds.find(value) is None:
            raise ValueError(kinds.unknown(value))
        return value

    def params(self, kind: str | None = None) -> BaseModel:
        """The parameters of ``kind`` (default: the configured kind), defaults filled in."""
        from aitrader.models import kinds

        name = kind or self.kind
        given = self.__pydantic_extra__.get(name)
        return given if isinstance(given, BaseModel) else kinds.get(name).params()


MOVED = {
    "persistence_column": "moved: write `persistence: {column: NAME}` under models",
    "decision": "removed: the trading decision (min_ev, sides) is tuned on each bundle's "
    "calibration slice (signals.* sets its bounds); delete models.decision",
}
"""Keys an older version accepted, with what replaces them."""
