"""The one base of every config section and settled value model: immutable, unknown keys refused.

It lives in a module of its own (importing only pydantic) so that every package's config module
can use it without importing :mod:`aitrader.config`, which imports them for its ``Settings``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base for config sections: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
