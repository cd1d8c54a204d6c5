"""Risk state that must survive a restart (kill switch, peak equity, day counters, cool-down).

Kept behind the small :class:`RiskStateStore` protocol; the JSON file store writes atomically
(temp file + fsync + ``os.replace``) so a crash never leaves a half-written state.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from aitrader.errors import ConfigError


@dataclass(frozen=True)
class RiskState:
    """Everything the RiskManager remembers between bars and between runs."""

    kill_switch: bool = False
    kill_reason: str = ""
    kill_time: pd.Timestamp | None = None
    peak_equity: float = 0.0
    day: str = ""
    day_start_equity: float = 0.0
    trades_today: int = 0
    consecutive_losses: int = 0
    cooldown_until: pd.Timestamp | None = None
    trade_returns: tuple[float, ...] = ()  # the last closed trades' returns (Kelly sizing)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["trade_returns"] = list(self.trade_returns)
        for key in ("kill_time", "cooldown_until"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RiskState:
        values = dict(data)
        for key in ("kill_time", "cooldown_until"):
            values[key] = None if values.get(key) is None else pd.Timestamp(values[key])
        values["trade_returns"] = tuple(float(r) for r in values.get("trade_returns", ()))
        return cls(**values)


class RiskStateStore(Protocol):
    """Where the risk state lives (a JSON file now, the SQLite ledger later)."""

    def load(self) -> RiskState | None: ...

    def save(self, state: RiskState) -> None: ...


class MemoryRiskStateStore:
    """In-process store for backtests: nothing written to disk."""

    def __init__(self, state: RiskState | None = None) -> None:
        self._state = state

    def load(self) -> RiskState | None:
        return self._state

    def save(self, state: RiskState) -> None:
        self._state = state


class JsonRiskStateStore:
    """A small JSON file, replaced atomically on every save."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()

    def load(self) -> RiskState | None:
        if not self.path.exists():
            return None
        try:
            return RiskState.from_json(json.loads(self.path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"risk state file {self.path} is unreadable ({exc}); fix it or remove it "
                "deliberately (removing it also clears the kill switch)"
            ) from exc

    def save(self, state: RiskState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(state.to_json(), handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
