"""``aitrader schedule list | run JOB``: the bot's scheduled jobs (the ``schedule:`` section),
and one job run now in the foreground, its messages sent like the bot's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from aitrader.cli.common import JsonOption, console, emit_json, err_console, table
from aitrader.cli.strategy import RunConfigOption, run_settings
from aitrader.config import Settings
from aitrader.ops.bot_config import JOBS

app = typer.Typer(help="The bot's scheduled jobs: list them, run one now.", no_args_is_help=True)


@app.command("list")
def list_command(
    ctx: typer.Context, config: Path | None = RunConfigOption, as_json: bool = JsonOption
) -> None:
    """Every job: its schedule (UTC) or off, its next run, and what it calls.

    Example: aitrader schedule list --config examples/paper-bot.yaml
    """
    from aitrader.ops.scheduler import next_runs

    rows = next_runs(run_settings(ctx, config))
    if as_json:
        emit_json([{"job": n, "schedule": w, "next_run": t, "calls": JOBS[n]} for n, w, t in rows])
        return
    console.print(table("Scheduled jobs", ["job", "schedule", "next run", "calls"], [
        [n, w, t, JOBS[n]] for n, w, t in rows
    ]))  # fmt: skip


@app.command("run")
def run_command(
    ctx: typer.Context,
    job: str = typer.Argument(..., help=f"One of: {', '.join(JOBS)}."),
    config: Path | None = RunConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Run one job now (its notices go to the notify section's channels too).

    Example: aitrader schedule run daily-report --config examples/paper-bot.yaml
    """
    from aitrader.ops.scheduler import job_callable, run_job

    cfg = run_settings(ctx, config)
    job_callable(job)  # an unknown name or a missing module: a clear error before anything
    with job_notifier(cfg) as notify:
        summary = run_job(job, cfg, notify)
    if as_json:
        emit_json({"job": job, "summary": summary})
    else:
        console.print(summary, highlight=False, soft_wrap=True)


@contextmanager
def job_notifier(cfg: Settings) -> Iterator[Callable[[str], None]]:
    """A job's messages from the command line: printed, and sent to the configured channels
    (queued; everything is sent before the command ends)."""
    from aitrader.ops.notify import Notice
    from aitrader.ops.service import channels

    notifiers, telegram = channels(cfg)

    def notify(text: str) -> None:
        err_console.print(f"notice: {text}", highlight=False, soft_wrap=True)
        for notifier in notifiers:
            notifier.notify(Notice("job", text))

    for notifier in notifiers:
        notifier.start()
    try:
        yield notify
    finally:
        for notifier in notifiers:
            notifier.stop()
        if telegram is not None:
            telegram.close()
