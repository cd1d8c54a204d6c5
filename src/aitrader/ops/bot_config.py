"""The ``bot:`` and ``schedule:`` config sections of ``aitrader run`` (one long-running process:
the paper or live runtime, the API, the scheduler and the notifier)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aitrader.frozen import Frozen

JOBS: dict[str, str] = {
    "data-sync": "aitrader.ops.jobs:data_sync_job",
    "scan": "aitrader.ops.jobs:scan_job",
    "daily-report": "aitrader.ops.jobs:daily_report_job",
    "retrain": "aitrader.models.promotion:retrain_job",
    "drift": "aitrader.ops.drift:drift_job",
}
"""The scheduler's jobs by name: ``module:function`` with the signature
``fn(settings, notify) -> str`` (a one-line summary), imported when the job runs."""


class BotConfig(Frozen):
    """What ``aitrader run`` hosts and how its runtime gets bars. What it trades comes from the
    ``run:`` section (strategy, data or exchange and symbols), as for ``paper`` and ``live``."""

    mode: Literal["paper", "live"] = Field(
        "paper", description="paper: simulated fills; live: real orders (needs confirm_live)"
    )
    ledger: Path = Field(Path("bot.db"), description="the run's SQLite ledger (a restart resumes)")
    runtime: bool = Field(True, description="run the paper/live runtime")
    api: bool = Field(True, description="serve the monitoring API (the api section)")
    notify: bool = Field(True, description="send notices (the notify section names channels)")
    scheduler: bool = Field(True, description="run the scheduled jobs (the schedule section)")
    replay_speed: float = Field(
        0.0, ge=0, description="paper replay of run.data: bar durations per second (0: max)"
    )
    replay_bars: int | None = Field(None, ge=1, description="replay only the last N bars")
    feed: Literal["ws", "rest"] = Field("ws", description="live bars: websocket or REST")
    poll: float = Field(5.0, gt=0, description="seconds between REST polls")
    exchange_url: str | None = Field(None, description="another REST endpoint (testnet)")
    exchange_ws_url: str | None = Field(None, description="its websocket endpoint")
    confirm_live: bool = Field(False, description="mode live trades real money: confirm it")
    max_bars: int | None = Field(None, ge=1, description="stop the runtime after N bars in all")
    stay_up: bool = Field(True, description="keep the API and scheduler up once a replay has ended")


class JobSchedule(Frozen):
    """When one job runs: a crontab line (``m h dom mon dow``, UTC) or an interval."""

    enabled: bool = True
    cron: str | None = Field(None, description="crontab line, e.g. '5 * * * *'")
    every_minutes: float | None = Field(None, gt=0, description="or: every N minutes")

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if (self.cron is None) == (self.every_minutes is None):
            raise ValueError("give either cron or every_minutes")
        return self


def _default_jobs() -> dict[str, JobSchedule]:
    return {
        "data-sync": JobSchedule(cron="2 * * * *"),
        "scan": JobSchedule(cron="5 * * * *"),
        "daily-report": JobSchedule(cron="0 0 * * *"),
        "drift": JobSchedule(enabled=False, cron="30 0 * * *"),
        "retrain": JobSchedule(enabled=False, cron="0 3 * * 6"),
    }


class ScheduleConfig(Frozen):
    """The scheduler: its SQLite job store, misfire handling and the jobs (names from
    ``aitrader schedule list``). A missed run is run once (coalesced) if it is at most
    ``misfire_grace_seconds`` late; a job never runs twice at the same time."""

    store: Path = Field(Path("schedule.db"), description="SQLite job store")
    misfire_grace_seconds: int = Field(3600, ge=1, description="how late a run may still start")
    reports_dir: Path = Field(Path("reports"), description="where daily reports are written")
    scan_bars: int = Field(1000, ge=100, description="bars of history a scheduled scan reads")
    jobs: dict[str, JobSchedule] = Field(
        default_factory=_default_jobs, description="per job: cron or every_minutes, enabled"
    )

    @field_validator("jobs", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        """Each job given is merged over its default (``scan: {enabled: false}`` keeps the
        default trigger; a new cron or every_minutes replaces it)."""
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(JOBS))
        if unknown:
            raise ValueError(f"unknown jobs {unknown}; the jobs are {sorted(JOBS)}")
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_jobs().items()}
        for name, given in value.items():
            if isinstance(given, dict):
                base = merged[name]
                if "cron" in given or "every_minutes" in given:
                    base = {**base, "cron": None, "every_minutes": None}
                given = {**base, **given}
            merged[name] = given
        return merged
