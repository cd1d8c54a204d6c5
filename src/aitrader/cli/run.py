"""``aitrader run --config bot.yaml``: the bot process (runtime + API + scheduler + notifier,
see :mod:`aitrader.ops.bot`). The runtime is the one ``aitrader paper`` and ``live`` use — a
replay of ``run.data`` at ``bot.replay_speed``, or an exchange's live bars with simulated
(``bot.mode: paper``) or real (``live``) orders — with the strategy of the ``run:`` section."""

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


def exchange_runtime(cfg: Settings) -> Runtime:
    """Paper trading on an exchange's live bars, or live trading (``bot.mode``), on
    ``run.exchange`` / ``run.symbols`` / ``run.timeframe``, as ``paper --exchange`` and
    ``live`` do."""
    from aitrader.cli.live import LiveBars, drive, has_keys, live_session, paper_live_session
    from aitrader.venues.ccxt.startup import venue_errors

    run, bot = cfg.run, cfg.bot
    if not run.exchange or not run.symbols:
        raise ConfigError("the bot needs run.data (a replay) or run.exchange and run.symbols")
    name = run.exchange.strip().lower()
    if bot.mode == "live" and not has_keys(cfg, name):
        raise ConfigError(f"bot.mode live: no API keys for {name} in the secrets")
    if bot.mode == "live" and not bot.confirm_live:
        raise ConfigError(
            f"bot.mode live places real orders on {name} with real money: set bot.confirm_live"
        )
    feed = (bot.feed, bot.poll, bot.exchange_url, bot.exchange_ws_url)
    bars = LiveBars(name, tuple(run.symbols), run.timeframe or "1m", *feed)
    strategy = choice(cfg, None, None, None)

    async def runtime(book: Ledger, stop: StopSignal) -> RunSummary:
        with venue_errors(name, bot.exchange_url):
            if bot.mode == "live":
                session = live_session(cfg, bars, strategy, run.capital, book)
            else:
                session = paper_live_session(cfg, bars, strategy, book)
            return (await drive(cfg, session, bot.max_bars, stop))[1]

    return runtime


def build_runtime(cfg: Settings) -> Runtime | None:
    """The runtime ``bot.mode`` and the ``run:`` section ask for (None: switched off): a
    paper replay of ``run.data``, else trading on ``run.exchange``'s live bars."""
    if not cfg.bot.runtime:
        return None
    if cfg.bot.mode == "paper" and cfg.run.data:
        return replay_runtime(cfg)
    return exchange_runtime(cfg)


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
