"""The headline store: one JSON object per line (publication time, title, source, link, score,
scorer, fetch time), appended to, never rewritten; a headline already stored (same link, or
same title and time) is not added twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.errors import DataError
from aitrader.sentiment.feeds import Headline


def _keys(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    keys: set[str] = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            keys.add(str(_record(path, n, line)["key"]))
    return keys


def _record(path: Path, n: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not an object")
        record["key"] = str(record["key"])
        record["score"] = float(record["score"])
        record["published"] = str(record["published"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: line {n} is not a stored headline ({exc})") from None
    return record


def append(path: Path, headlines: Sequence[Headline], scores: np.ndarray, scorer: str) -> int:
    """Add the headlines not stored yet; returns how many were added."""
    path.parent.mkdir(parents=True, exist_ok=True)
    known = _keys(path)
    fetched = pd.Timestamp.now(tz="UTC").isoformat()
    lines = []
    for headline, score in zip(headlines, scores, strict=True):
        key = headline.key()
        if key in known:
            continue
        known.add(key)
        record = {
            "key": key,
            "published": headline.published.isoformat(),
            "title": headline.title,
            "source": headline.source,
            "url": headline.url,
            "score": float(score),
            "scorer": scorer,
            "fetched": fetched,
        }
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    with path.open("a") as out:
        out.writelines(lines)
    return len(lines)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    file = Path(path)
    records = [
        _record(file, n, line)
        for n, line in enumerate(file.read_text().splitlines(), 1)
        if line.strip()
    ]
    if not records:
        return np.empty(0, np.int64), np.empty(0)
    try:
        stamps = pd.to_datetime([str(r["published"]) for r in records], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{file}: unreadable publication time ({exc})") from None
    published = np.asarray(stamps.as_unit("ns").asi8, dtype=np.int64)
    scores = np.array([float(r["score"]) for r in records], dtype=np.float64)
    order = np.argsort(published, kind="stable")
    return published[order], scores[order]


def load_scored(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Publication times (UTC ns, sorted) and scores of every stored headline; an empty or
    missing store gives none (DataError naming the line of a damaged one)."""
    file = Path(path).expanduser()
    if not file.is_file():
        return np.empty(0, np.int64), np.empty(0)
    stat = file.stat()
    return _load(str(file.resolve()), stat.st_mtime_ns, stat.st_size)
