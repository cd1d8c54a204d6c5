"""Names a user gives that become part of a file path (an exchange, a symbol, a timeframe):
checked before any path is built from them."""

from __future__ import annotations

import unicodedata

from aitrader.errors import ConfigError

SEPARATORS = ("/", "\\")


def path_segment(value: str, what: str, separators: bool = False) -> str:
    """``value`` when it may become (part of) one path segment; else :class:`ConfigError`
    naming ``what`` and the rule: not empty, not ``.`` or ``..``, no control character and —
    unless ``separators`` (a symbol such as ``BTC/USDT``, quoted by the store) — no ``/`` or
    ``\\``."""
    problem = None
    if not value.strip():
        problem = "is empty"
    elif value.strip() in (".", ".."):
        problem = "is a relative path ('.' or '..')"
    elif any(unicodedata.category(c) == "Cc" for c in value):
        problem = "holds a control character"
    elif not separators and any(s in value for s in SEPARATORS):
        problem = "holds a path separator (/ or \\)"
    if problem is not None:
        raise ConfigError(f"{what} {value!r} {problem}: it becomes part of a file name")
    return value
