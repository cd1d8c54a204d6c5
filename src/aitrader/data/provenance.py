"""What may be written into a stored series, and the record each write leaves behind.

A write that meets existing timestamps with different values stops unless the caller chose
``keep`` (stored rows win) or ``replace`` (new rows win); a write from a different source than the
one the series came from is refused unless asked for. Every write appends an entry to the
series' history (time, action, source, rows, conflicts, checksum of the series afterwards).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from aitrader.data.schema import COLUMNS
from aitrader.errors import DataError

CALENDARS = ("crypto", "equity")
RUN_ID = uuid.uuid4().hex[:12]  # one per process: a run's many writes make one history entry
RELATIVE_TOLERANCE = 1e-9  # float noise below this is not a conflict


class OnConflict(StrEnum):
    """What a write does with existing timestamps whose values differ."""

    KEEP = "keep"
    REPLACE = "replace"
    FAIL = "fail"


class ConflictError(DataError):
    """New rows disagree with stored rows at the same timestamps and nobody said which wins."""


@dataclass(frozen=True)
class Write:
    """How to write rows into a series: their source, the action and what to do on conflict."""

    source: str
    action: str = "write"
    on_conflict: OnConflict = OnConflict.FAIL
    allow_other_source: bool = False
    calendar: str | None = None  # None keeps the series' calendar (new series: crypto)


@dataclass(frozen=True)
class Conflicts:
    """Existing timestamps where the new rows differ, and the largest difference among them."""

    rows: int
    mask: np.ndarray  # over the new rows: True where a stored row differs
    where: str = ""
    column: str = ""
    old: float = 0.0
    new: float = 0.0

    def describe(self) -> str:
        if not self.rows:
            return "no conflicts"
        change = (self.new - self.old) / abs(self.old) if self.old else float("inf")
        return (
            f"{self.rows} bar(s) differ from the stored ones; largest difference: {self.column} "
            f"{self.old:g} stored vs {self.new:g} new ({change:+.2%}) at {self.where}"
        )


def find_conflicts(old: pd.DataFrame, new: pd.DataFrame) -> Conflicts:
    """Compare ``new`` with ``old`` on their common timestamps (both valid candle frames)."""
    common = new.index.isin(old.index)
    if not common.any():
        return Conflicts(0, common)
    b = new.loc[common, list(COLUMNS)].to_numpy(dtype="float64")
    a = old.loc[new.index[common], list(COLUMNS)].to_numpy(dtype="float64")
    diff = np.abs(a - b)
    relative = diff / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    differs = (relative > RELATIVE_TOLERANCE).any(axis=1)
    mask = np.zeros(len(new), dtype=bool)
    mask[np.flatnonzero(common)[differs]] = True
    if not differs.any():
        return Conflicts(0, mask)
    row, col = np.unravel_index(int(np.argmax(np.where(differs[:, None], relative, -1.0))), a.shape)
    stamp = new.index[np.flatnonzero(common)[row]]
    return Conflicts(
        int(differs.sum()), mask, stamp.isoformat(), COLUMNS[col], float(a[row, col]), b[row, col]
    )


def source_family(source: str) -> str:
    """Sources that may feed one series together: every ``file:`` import is one family."""
    return "file" if source.startswith("file:") else source


def check_source(key: str, stored: str, write: Write) -> None:
    """Refuse rows from another source than the series' own unless the write allows it."""
    if write.allow_other_source or source_family(stored) == source_family(write.source):
        return
    raise DataError(
        f"{key} holds data from {stored}; refusing to add rows from {write.source} "
        "(pass --allow-other-source to mix sources in one series, or store them under another "
        "--exchange name)"
    )


def infer_calendar(index: pd.Index) -> str:
    """``equity`` when two weeks or more hold no weekend bar (UTC), else ``crypto``."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return "crypto"
    if index.max() - index.min() < pd.Timedelta(days=14):
        return "crypto"
    return "crypto" if bool((index.day_of_week >= 5).any()) else "equity"


def check_calendar(calendar: str | None) -> None:
    if calendar is not None and calendar not in CALENDARS:
        raise DataError(f"calendar {calendar!r}: use {' or '.join(CALENDARS)}")


def merge(old: pd.DataFrame, new: pd.DataFrame, key: str, write: Write) -> tuple[pd.DataFrame, int]:
    """The merged series and the number of conflicting rows; raises ConflictError on ``fail``."""
    conflicts = find_conflicts(old, new)
    if conflicts.rows and write.on_conflict is OnConflict.FAIL:
        raise ConflictError(
            f"{key}: {conflicts.describe()}. Nothing was written; choose --on-conflict keep "
            "(stored rows win) or --on-conflict replace (new rows win)"
        )
    keep = "first" if write.on_conflict is OnConflict.KEEP else "last"
    merged = pd.concat([old, new])
    merged = merged[~merged.index.duplicated(keep=keep)].sort_index()
    return merged, conflicts.rows


def history_entry(write: Write, rows_in: int, added: int, conflicts: int) -> dict[str, Any]:
    """One history record (the series' rows and checksum are filled in by the store)."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": write.action,
        "source": write.source,
        "rows_in": rows_in,
        "added": added,
        "conflicts": conflicts,
        "on_conflict": write.on_conflict.value,
        "run": RUN_ID,
    }


def extend_history(history: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Append ``entry``, folding it into the last one when the same run wrote the same way."""
    last = history[-1] if history else None
    same = ("run", "action", "source", "on_conflict")
    if last is None or any(last.get(k) != entry[k] for k in same):
        return [*history, entry]
    folded = {**last, **entry}
    for count in ("rows_in", "added", "conflicts"):
        folded[count] = int(last.get(count, 0)) + int(entry[count])
    return [*history[:-1], folded]
