"""``aitrader run --config bot.yaml``: the bot process (runtime + API + scheduler + notifier,
see :mod:`aitrader.ops.bot`). The runtime is the one ``aitrader paper`` uses — a replay of
``run.data`` at ``bot.replay_speed`` — with the strategy of the ``run:`` section."""

from __future__ import annotations

from pathlib import Path

import typer

from aitrader.cli.common import err_console
from aitrader.cli.strategy import RunConfigOption, choice, run_settings
from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import Ledger
from aitrader.live.summary import RunSummary
from aitrader.ops.bot import Runtime, StopSignal, run_bot


def _say(text: str) -> None:
    err_console.print(text, highlight=False, soft_wrap=True)


def replay_runtime(cfg: Settings) -> Runtime:
    """The paper replay of ``run.data`` (one data set) as the bot's runtime."""
    from aitrader.cli.live import replay_plan, replay_runner

    if len(cfg.run.data) != 1:
        raise ConfigError(
            f"bot.mode paper replays one data set: run.data has {len(cfg.run.data)} "
            "(e.g. run: {data: [sample:BTC-USD-1h]})"
        )
    bot = cfg.bot
    strategy = choice(cfg, None, None, None)
    plan = replay_plan(cfg, cfg.run.data[0], bot.replay_bars, bot.replay_speed, strategy)

    async def runtime(book: Ledger, stop: StopSignal) -> RunSummary:
        runner = replay_runner(plan, cfg, book, stop.feeds(plan.feeds))
        return await stop.run(runner, bot.max_bars)

    return runtime


def build_runtime(cfg: Settings) -> Runtime | None:
    """The runtime ``bot.mode`` and the ``run:`` section ask for (None: switched off)."""
    if not cfg.bot.runtime:
        return None
    if cfg.bot.mode == "paper" and cfg.run.data:
        return replay_runtime(cfg)
    raise ConfigError(
        "aitrader run hosts a paper replay of run.data (bot.mode paper); for paper or live "
        "trading on an exchange's bars use `aitrader paper --exchange` / `aitrader live` with "
        "`aitrader run` beside it (bot: {runtime: false}) on the same ledger"
    )


def run_command(ctx: typer.Context, config: Path | None = RunConfigOption) -> None:
    """Run the bot: the paper runtime, the monitoring API, the scheduler and the notifier in
    one process (each can be switched off in the bot: section). Ctrl-C or SIGTERM stops it
    cleanly; run it again on the same ledger (bot.ledger) to resume.

    Example: aitrader run --config examples/paper-bot.yaml
    """
    cfg = run_settings(ctx, config)
    summary = run_bot(cfg, build_runtime(cfg), _say)
    if summary is not None:
        _say(
            f"ledger {cfg.bot.ledger}: {summary.bars} bars, {summary.fills} fills, "
            f"equity {summary.equity:,.2f}"
        )
