"""The bot's scheduler: APScheduler 3 with a SQLite job store (the next run times survive a
restart), one job per entry of :data:`aitrader.ops.bot_config.JOBS` that the ``schedule``
section enables.

Every job runs :func:`scheduled_job` with its name; that imports the job's callable by its
dotted path only when it runs (``fn(settings, notify) -> str``), logs its one-line summary as a
``schedule`` event in the bot's ledger and hands it to the notifier. A failing job is logged
and notified, never raised into the scheduler. Misfires and overlaps: runs missed while the bot
was down are coalesced into one (if at most ``misfire_grace_seconds`` late) and a job never
runs twice at the same time (``max_instances=1``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.ops.bot_config import JOBS, JobSchedule

log = logging.getLogger(__name__)

Notify = Callable[[str], None]
Job = Callable[[Settings, Notify], str]


@dataclass
class _Context:
    """What scheduled runs need and the job store cannot hold: set when the scheduler starts."""

    settings: Settings | None = None
    notify: Notify | None = None


CONTEXT = _Context()


def job_callable(name: str) -> Job:
    """The callable behind job ``name``, imported by its dotted path now."""
    if name not in JOBS:
        raise ConfigError(f"unknown job {name!r}; the jobs are {', '.join(sorted(JOBS))}")
    module, _, attribute = JOBS[name].partition(":")
    try:
        found: Job = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"job {name}: cannot import {JOBS[name]} ({exc})") from None
    return found


def run_job(name: str, settings: Settings, notify: Notify) -> str:
    """Run job ``name`` now; its summary (recorded in the bot's ledger when there is one)."""
    summary = job_callable(name)(settings, notify)
    _record(settings, name, summary, "info")
    return summary


def scheduled_job(name: str) -> None:
    """What the job store holds for every job: run ``name`` with the bot's settings; errors
    are logged, recorded and notified, never raised (the scheduler goes on)."""
    settings, notify = CONTEXT.settings, CONTEXT.notify or _log_notice
    if settings is None:
        log.error("scheduled job without settings", extra={"job": name})
        return
    try:
        summary = run_job(name, settings, notify)
    except Exception as exc:
        text = f"job {name} failed: {type(exc).__name__}: {exc}"
        log.error("scheduled job failed", extra={"job": name, "error": str(exc)})
        _record(settings, name, text, "error")
        notify(text)
        return
    log.info("scheduled job done", extra={"job": name, "summary": summary})


def _log_notice(text: str) -> None:
    log.warning("notice: %s", text)


def _record(settings: Settings, name: str, text: str, level: str) -> None:
    """The job's outcome as a ``schedule`` event in the bot's ledger (if it exists)."""
    path = settings.bot.ledger
    if not path.is_file():
        return
    from aitrader.live.ledger import Ledger
    from aitrader.live.records import secret_values

    with Ledger(path, secret_values(settings.secrets)) as ledger:
        ledger.log_event("schedule", f"{name}: {text}", level, {"job": name})


def trigger(schedule: JobSchedule) -> Any:
    """The APScheduler trigger of a job's schedule (cron lines and intervals in UTC)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron is not None:
        try:
            return CronTrigger.from_crontab(schedule.cron, timezone=UTC)
        except ValueError as exc:
            raise ConfigError(f"schedule cron {schedule.cron!r}: {exc}") from None
    assert schedule.every_minutes is not None
    return IntervalTrigger(minutes=schedule.every_minutes, timezone=UTC)


def configure(scheduler: Any, settings: Settings) -> None:
    """Set up ``scheduler`` (an APScheduler 3 scheduler, not started): the SQLite job store,
    a thread per job, coalescing, one instance per job, the misfire grace."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    cfg = settings.schedule
    cfg.store.parent.mkdir(parents=True, exist_ok=True)
    scheduler.configure(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{cfg.store}")},
        executors={"default": ThreadPoolExecutor(max(len(JOBS), 1))},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": cfg.misfire_grace_seconds,
        },
        timezone=UTC,
    )


def schedule_jobs(scheduler: Any, settings: Settings) -> list[str]:
    """The enabled jobs into the (started, paused) scheduler's store: a stored job whose
    schedule is unchanged keeps its next run time (so runs missed while the bot was down are
    seen, and coalesced); a changed one is replaced; a disabled one is removed. Their names."""
    scheduled = []
    for name, schedule in sorted(settings.schedule.jobs.items()):
        stored = scheduler.get_job(name)
        if not schedule.enabled:
            if stored is not None:
                scheduler.remove_job(name)
            continue
        wanted = trigger(schedule)
        if stored is None or str(stored.trigger) != str(wanted):
            scheduler.add_job(
                scheduled_job, wanted, args=[name], id=name, name=name, replace_existing=True
            )
        scheduled.append(name)
    for job in scheduler.get_jobs():
        if job.id not in scheduled:
            scheduler.remove_job(job.id)  # a job this version no longer knows
    return scheduled


def start(scheduler: Any, settings: Settings, notify: Notify) -> list[str]:
    """Configure and start ``scheduler`` for the bot; the jobs scheduled."""
    CONTEXT.settings, CONTEXT.notify = settings, notify
    configure(scheduler, settings)
    scheduler.start(paused=True)
    names = schedule_jobs(scheduler, settings)
    scheduler.resume()
    return names


def next_runs(settings: Settings, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """Every job: name, its schedule (or ``off``), and its next run time after ``now``."""
    now = now or datetime.now(UTC)
    rows = []
    for name in JOBS:
        schedule = settings.schedule.jobs.get(name)
        if schedule is None or not schedule.enabled:
            rows.append((name, "off", "-"))
            continue
        if schedule.every_minutes is not None:  # from now on, as a bot started now runs it
            when, fire = (
                f"every {schedule.every_minutes:g} min",
                now + timedelta(minutes=schedule.every_minutes),
            )
        else:
            when, fire = str(schedule.cron), trigger(schedule).get_next_fire_time(None, now)
        rows.append((name, when, "-" if fire is None else fire.isoformat()))
    return rows
