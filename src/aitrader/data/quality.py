"""Quality checks on candles: gaps, duplicates, ordering, OHLC sanity, prices, volume, outliers.

Each check counts offending rows and carries a policy (reject / drop / flag). Gaps are reported,
never forward-filled. The checks accept raw (unvalidated) frames so a bad file can be inspected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce

import numpy as np
import pandas as pd

from aitrader.config import Policy, QCConfig
from aitrader.data.schema import COLUMNS, ns_stamps
from aitrader.data.timeframes import timeframe_seconds
from aitrader.errors import DataError

MAX_LISTED = 20
NS = 1_000_000_000


@dataclass(frozen=True)
class Gap:
    """Missing bars between two present ones: ``start`` is the first missing bar's open time."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "missing": self.missing,
        }


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: how many rows it hit, under which policy, and the first few."""

    name: str
    policy: Policy
    count: int
    positions: np.ndarray = field(repr=False)
    examples: list[str]

    @property
    def rejected(self) -> bool:
        return self.count > 0 and self.policy is Policy.REJECT

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.name,
            "policy": self.policy.value,
            "count": self.count,
            "status": "reject" if self.rejected else ("warn" if self.count else "ok"),
            "examples": self.examples,
        }


@dataclass(frozen=True)
class QCReport:
    """All checks on one data set, plus the gap list."""

    dataset: str
    timeframe: str
    rows: int
    first: str | None
    last: str | None
    checks: list[CheckResult]
    gaps: list[Gap]

    @property
    def passed(self) -> bool:
        return not any(c.rejected for c in self.checks)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing for g in self.gaps)

    @property
    def longest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.missing, default=None)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, object]:
        longest = self.longest_gap
        return {
            "dataset": self.dataset,
            "timeframe": self.timeframe,
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "passed": self.passed,
            "checks": [c.as_dict() for c in self.checks],
            "gaps": {
                "count": len(self.gaps),
                "missing_bars": self.missing_bars,
                "longest": longest.as_dict() if longest else None,
                "list": [g.as_dict() for g in self.gaps],
            },
        }


def run_qc(
    df: pd.DataFrame,
    timeframe: str,
    config: QCConfig | None = None,
    dataset: str = "data",
    calendar: str = "crypto",
) -> QCReport:
    """Run every check. ``calendar='equity'`` ignores weekends when looking for gaps."""
    config = config or QCConfig()
    stamps = (
        ns_stamps(df.index) if isinstance(df.index, pd.DatetimeIndex) else np.array([], "int64")
    )
    values = {c: df[c].to_numpy(dtype="float64") for c in COLUMNS}
    step_ns = timeframe_seconds(timeframe) * NS
    check_spacing(stamps, step_ns, timeframe, dataset)
    gaps = find_gaps(stamps, step_ns, calendar)
    positions = {
        "missing_values": np.flatnonzero(~_all(np.isfinite(v) for v in values.values())),
        "duplicates": _duplicate_positions(stamps),
        "non_increasing": np.flatnonzero(np.diff(stamps) < 0) + 1,
        "ohlc": _ohlc_positions(values),
        "non_positive": np.flatnonzero(~_all(values[c] > 0 for c in COLUMNS[:4])),
        "off_grid": off_grid_positions(stamps, step_ns),
        "zero_volume": np.flatnonzero(values["volume"] == 0),
        "outliers": _outlier_positions(values["close"], config.outlier_z, config.outlier_window),
        "gaps": np.array([], dtype="int64"),
    }
    checks = [
        _result(name, _policy(config, name), pos, df.index, len(gaps) if name == "gaps" else None)
        for name, pos in positions.items()
    ]
    return QCReport(
        dataset=dataset,
        timeframe=timeframe,
        rows=len(df),
        first=df.index[0].isoformat() if len(df) else None,
        last=df.index[-1].isoformat() if len(df) else None,
        checks=checks,
        gaps=gaps,
    )


def apply_policies(df: pd.DataFrame, report: QCReport) -> pd.DataFrame:
    """Raise DataError if a reject check hit; otherwise drop the rows of ``drop`` checks."""
    rejected = [c for c in report.checks if c.rejected]
    if rejected:
        detail = "; ".join(
            f"{c.name} in {c.count} row(s), e.g. {', '.join(c.examples[:3]) or '-'}"
            for c in rejected
        )
        raise DataError(
            f"{report.dataset}: quality checks rejected the data ({detail}); policies are in "
            "the config's qc section (see `aitrader data qc` for the full report)"
        )
    drop = [c.positions for c in report.checks if c.policy is Policy.DROP and c.count]
    if not drop:
        return df
    keep = np.ones(len(df), dtype=bool)
    keep[np.concatenate(drop)] = False
    return df.iloc[keep]


def find_gaps(stamps: np.ndarray, step_ns: int, calendar: str = "crypto") -> list[Gap]:
    """Holes between consecutive increasing timestamps larger than one bar."""
    if stamps.size < 2:
        return []
    diffs = np.diff(stamps)
    if not (diffs > step_ns).any():
        return []
    where = np.flatnonzero(diffs > step_ns)
    gaps = []
    for i in where:
        start, end = int(stamps[i]) + step_ns, int(stamps[i + 1]) - step_ns
        missing = int(diffs[i] // step_ns) - 1
        if calendar == "equity" and step_ns >= 86400 * NS:
            missing = _weekday_count(start, end, step_ns)
        if missing > 0:
            gaps.append(Gap(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), missing))
    return gaps


def check_spacing(stamps: np.ndarray, step_ns: int, timeframe: str, dataset: str) -> None:
    """Raise DataError when the bars' usual spacing is not ``timeframe`` (e.g. 1h bars as 1m)."""
    steps = np.diff(np.unique(stamps))
    if steps.size < 3:
        return
    values, counts = np.unique(steps, return_counts=True)
    usual = int(values[np.argmax(counts)])
    if usual != step_ns:
        raise DataError(
            f"{dataset}: the bars are usually {_duration(usual)} apart, not {timeframe}; "
            "give the timeframe the data has (--timeframe), or resample it after importing"
        )


def off_grid_positions(stamps: np.ndarray, step_ns: int) -> np.ndarray:
    """Intraday bars whose offset within the bar length differs from the series' usual one.

    Exchanges open bars on multiples of the bar length; equity sessions may sit at another
    constant offset (13:30 UTC for hourly US stocks), so the usual offset is the grid.
    """
    if stamps.size == 0 or step_ns >= 86400 * NS:
        return np.array([], dtype="int64")
    phase = np.mod(stamps, step_ns)
    values, counts = np.unique(phase, return_counts=True)
    return np.flatnonzero(phase != values[np.argmax(counts)])


def _duration(ns: int) -> str:
    seconds = ns // NS
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _weekday_count(start: int, end: int, step_ns: int) -> int:
    days = pd.date_range(
        pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), freq=f"{step_ns}ns"
    )
    return int((days.day_of_week < 5).sum())


def _all(masks: Iterable[np.ndarray]) -> np.ndarray:
    """Element-wise AND of boolean arrays (faster than stacking them)."""
    return np.asarray(reduce(np.logical_and, masks))


def _policy(config: QCConfig, name: str) -> Policy:
    return Policy.REJECT if name == "missing_values" else Policy(getattr(config, name))


def _result(
    name: str, policy: Policy, positions: np.ndarray, index: pd.Index, count: int | None
) -> CheckResult:
    positions = np.unique(positions).astype("int64")
    examples = [f"row {p + 1} ({_stamp(index, p)})" for p in positions[:MAX_LISTED]]
    return CheckResult(
        name, policy, int(count if count is not None else positions.size), positions, examples
    )


def _stamp(index: pd.Index, position: int) -> str:
    value = index[position]
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def _duplicate_positions(stamps: np.ndarray) -> np.ndarray:
    """Every row whose timestamp already appeared earlier (the later copies)."""
    if stamps.size < 2 or (np.diff(stamps) > 0).all():
        return np.array([], dtype="int64")
    return np.flatnonzero(pd.Index(stamps).duplicated(keep="first"))


def _ohlc_positions(v: dict[str, np.ndarray]) -> np.ndarray:
    o, h, lo, c = v["open"], v["high"], v["low"], v["close"]
    with np.errstate(invalid="ignore"):
        bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
    return np.flatnonzero(bad)


def _outlier_positions(close: np.ndarray, z: float, window: int) -> np.ndarray:
    """Bars whose log return is more than ``z`` robust standard deviations (MAD) from the median."""
    if close.size < 3:
        return np.array([], dtype="int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.log(close[1:] / close[:-1])
    series = pd.Series(returns)
    if window:
        median = series.rolling(window, min_periods=max(3, window // 2)).median().shift(1)
        mad = (series - median).abs().rolling(window, min_periods=max(3, window // 2)).median()
        center, scale = median.to_numpy(), 1.4826 * mad.shift(1).to_numpy()
    else:
        finite = returns[np.isfinite(returns)]
        center = np.median(finite) if finite.size else 0.0
        scale = 1.4826 * np.median(np.abs(finite - center)) if finite.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.abs(returns - center) / scale
    return np.flatnonzero(np.nan_to_num(score, nan=0.0, posinf=0.0) > z) + 1
