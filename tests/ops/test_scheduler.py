"""The bot's scheduler on a controllable clock (APScheduler's own clock reads replaced, the
scheduler ticked by the test, never by sleeping): runs missed while the bot was down are
coalesced into one, a run later than the grace is skipped, a job never overlaps itself, the
SQLite job store keeps the next run across a restart, and a failing job is recorded and
notified without stopping the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apscheduler.executors.base
import apscheduler.schedulers.base
import apscheduler.triggers.interval
import pytest
from apscheduler.schedulers.base import BaseScheduler

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import Ledger
from aitrader.ops import bot_config
from aitrader.ops.scheduler import job_callable, next_runs, start

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday noon
CALLS: list[str] = []
GATE = threading.Event()
DONE = threading.Semaphore(0)


def counting_job(settings: Settings, notify: Any) -> str:
    CALLS.append("run")
    GATE.wait(30)  # the test releases it (bounded)
    DONE.release()
    return f"run {len(CALLS)}"


def failing_job(settings: Settings, notify: Any) -> str:
    DONE.release()
    raise RuntimeError("the exchange is down")


class ManualScheduler(BaseScheduler):
    """APScheduler's scheduler without a thread of its own: the test calls :meth:`tick`."""

    def wakeup(self) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def tick(self) -> None:
        self._process_jobs()


class FakeDatetime(datetime):
    """``datetime`` whose ``now`` is the test's clock (module level: job stores pickle it)."""

    current = T0

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return cls.current.astimezone(tz) if tz is not None else cls.current


class Clock:
    """The time APScheduler reads (``datetime.now``), moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        FakeDatetime.current = T0
        for module in (
            apscheduler.schedulers.base,
            apscheduler.executors.base,
            apscheduler.triggers.interval,
        ):
            monkeypatch.setattr(module, "datetime", FakeDatetime)

    def advance(self, **delta: float) -> None:
        FakeDatetime.current += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    CALLS.clear()
    GATE.set()
    monkeypatch.setitem(bot_config.JOBS, "data-sync", "test_scheduler_jobs:counting_job")
    monkeypatch.setitem(bot_config.JOBS, "scan", "test_scheduler_jobs:failing_job")
    yield Clock(monkeypatch)
    GATE.set()


@pytest.fixture(autouse=True)
def _importable_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's jobs under a plain module name (tests are imported by path)."""
    import sys

    monkeypatch.setitem(sys.modules, "test_scheduler_jobs", sys.modules[__name__])


def settings(tmp: Path, grace: int = 3600, scan: bool = False) -> Settings:
    jobs = {
        "data-sync": {"every_minutes": 60},
        "scan": {"enabled": scan, "every_minutes": 60},
        "daily-report": {"enabled": False},
    }
    return Settings(
        bot={"ledger": tmp / "bot.db"},
        schedule={"store": tmp / "jobs.db", "misfire_grace_seconds": grace, "jobs": jobs},
    )


def started(cfg: Settings, notices: list[str]) -> ManualScheduler:
    scheduler = ManualScheduler()
    assert start(scheduler, cfg, notices.append) == sorted(
        n for n, j in cfg.schedule.jobs.items() if j.enabled
    )
    return scheduler


def wait_done(count: int) -> None:
    for _ in range(count):
        assert DONE.acquire(timeout=30)


def test_missed_runs_are_coalesced_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    notices: list[str] = []
    cfg = settings(tmp_path)
    scheduler = started(cfg, notices)
    job = scheduler.get_job("data-sync")
    assert job is not None and job.next_run_time == T0 + timedelta(hours=1)
    clock.advance(minutes=59)
    scheduler.tick()
    assert CALLS == []  # not due yet
    clock.advance(minutes=1)
    scheduler.tick()
    wait_done(1)
    assert CALLS == ["run"]
    scheduler.shutdown()
    clock.advance(hours=5, minutes=10)  # the bot was down: five runs missed
    again = started(cfg, notices)  # the job store kept the next run time
    again.tick()
    wait_done(1)
    assert CALLS == ["run", "run"]  # once, not five times
    job = again.get_job("data-sync")
    assert job is not None and job.next_run_time == T0 + timedelta(hours=7)
    again.shutdown()


def test_a_run_later_than_the_grace_is_skipped(tmp_path: Path, clock: Clock) -> None:
    cfg = settings(tmp_path, grace=60)
    scheduler = started(cfg, [])
    scheduler.shutdown()
    clock.advance(hours=1, minutes=2)  # two minutes late, the grace is one
    again = started(cfg, [])
    again.tick()
    again.shutdown()  # waits for the executor: a run would have happened by now
    assert CALLS == []
    job = started(cfg, []).get_job("data-sync")
    assert job is not None and job.next_run_time == T0 + timedelta(hours=2)


def test_a_job_never_overlaps_itself(tmp_path: Path, clock: Clock) -> None:
    GATE.clear()  # the first run hangs until released
    scheduler = started(settings(tmp_path), [])
    clock.advance(hours=1)
    scheduler.tick()
    clock.advance(hours=1)
    scheduler.tick()  # the first run is still going: this one is skipped
    GATE.set()
    wait_done(1)
    for _ in range(50):  # the executor counts the first run as ended just after it returns
        clock.advance(hours=1)
        scheduler.tick()
        if DONE.acquire(timeout=0.2):
            break
    scheduler.shutdown()
    assert CALLS == ["run", "run"]


def test_a_failing_job_is_recorded_and_notified(tmp_path: Path, clock: Clock) -> None:
    with Ledger(tmp_path / "bot.db"):
        pass  # the bot's ledger exists: job outcomes go there
    notices: list[str] = []
    scheduler = started(settings(tmp_path, scan=True), notices)
    clock.advance(hours=1)
    scheduler.tick()
    wait_done(2)
    scheduler.shutdown()
    assert CALLS == ["run"]
    assert notices == ["job scan failed: RuntimeError: the exchange is down"]
    with Ledger(tmp_path / "bot.db") as ledger:
        events = [(e.level, e.message) for e in ledger.events("schedule")]
    assert ("info", "data-sync: run 1") in events
    assert ("error", "scan: job scan failed: RuntimeError: the exchange is down") in events


def test_jobs_are_imported_by_dotted_path_when_they_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(bot_config.JOBS, "drift", "aitrader.ops.no_such_module:drift_job")
    with pytest.raises(ConfigError, match=r"job drift: cannot import aitrader\.ops\.no_such"):
        job_callable("drift")
    with pytest.raises(ConfigError, match="unknown job 'nope'"):
        job_callable("nope")
    rows = {name: (when, fire) for name, when, fire in next_runs(settings(tmp_path), T0)}
    assert rows["data-sync"] == ("every 60 min", "2026-01-05T13:00:00+00:00")
    assert rows["daily-report"] == ("off", "-")
    assert bot_config.JOBS["retrain"] == "aitrader.models.promotion:retrain_job"
