"""``aitrader run``: one long-running process hosting the paper or live runtime, the
monitoring API (uvicorn on a thread, 127.0.0.1 unless told otherwise), the scheduler and the
notifier — each can be switched off in the ``bot:`` section.

The runtime runs on the main thread's event loop; every other part reads and writes the same
ledger file through its own connection, so none of them can hold up a bar. Ctrl-C or SIGTERM
sets one stop event: the feeds end, the runner finishes the bar in hand (its checkpoint
written), then the scheduler (after a job in progress), the notifier (after sending what is
queued) and the API stop, and the ledgers close. Run it again on the same ledger and the
runtime resumes after the last bar, as ``paper`` and ``live`` do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from aitrader.config import Settings
from aitrader.engine.types import Bar
from aitrader.errors import ConfigError
from aitrader.live.feeds import BarFeed
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.live.runner import Runner
from aitrader.live.summary import RunSummary
from aitrader.ops.notify import Notice

log = logging.getLogger(__name__)

Runtime = Callable[[Ledger, "StopSignal"], Awaitable[RunSummary]]
"""Builds the runner on the ledger and runs it until its feeds end or the bot stops."""
Say = Callable[[str], None]


class StopSignal:
    """The bot's stop event; feeds given to a runner through :meth:`feeds` end when it is set,
    and :meth:`run` asks the runner to stop after the bar in hand."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def feeds(self, feeds: list[BarFeed]) -> list[BarFeed]:
        return [StoppableFeed(f, self.event) for f in feeds]

    async def run(self, runner: Runner, max_bars: int | None) -> RunSummary:
        async def stop_runner() -> None:
            await self.event.wait()
            runner.stop_requested = True

        watcher = asyncio.create_task(stop_runner())
        try:
            return await runner.run(max_bars)
        finally:
            watcher.cancel()


class StoppableFeed:
    """A feed's bars until ``stop`` is set (then it ends, as a replay's last bar does)."""

    def __init__(self, feed: BarFeed, stop: asyncio.Event) -> None:
        self.feed, self.stop, self.symbol = feed, stop, feed.symbol

    def __getattr__(self, name: str) -> object:
        """The feed's other attributes (its timeframe, for the runner's watchdog)."""
        return getattr(self.feed, name)

    async def bars(self) -> AsyncIterator[Bar]:
        """The feed's bars; the feed is closed however this ends. A bar still awaited when the
        reader is cancelled (the runner's shutdown) is cancelled and waited for first: closing
        a generator that is still running raises instead of closing it."""
        source = aiter(self.feed.bars())
        stopped = asyncio.create_task(self.stop.wait())
        following: asyncio.Future[Bar] | None = None
        try:
            while not self.stop.is_set():
                following = asyncio.ensure_future(anext(source))
                await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    return
                try:
                    bar = following.result()
                except StopAsyncIteration:
                    return
                yield bar
        finally:
            stopped.cancel()
            if following is not None and not following.done():
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()


@dataclass
class Hosted:
    """The parts running, for the start-up line and the notice."""

    parts: list[str] = field(default_factory=list)
    api_url: str | None = None


class Bot:
    """The parts of one ``aitrader run`` process, started and stopped in order."""

    def __init__(self, settings: Settings, runtime: Runtime | None, say: Say) -> None:
        self.settings, self.runtime, self.say = settings, runtime, say
        self.stop = StopSignal()
        self._notify: Callable[[Notice], bool] = lambda notice: False
        self.hosted = Hosted()

    def _ledger(self) -> Ledger:
        return Ledger(self.settings.bot.ledger, secret_values(self.settings.secrets))

    async def main(self) -> RunSummary | None:
        """Start the parts, run the runtime (if on), stay up until stopped (if asked), stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        cfg = self.settings.bot
        if cfg.scheduler:  # a bad cron line is refused before anything starts
            from aitrader.ops.scheduler import trigger

            for schedule in self.settings.schedule.jobs.values():
                trigger(schedule)
        with ExitStack() as stack:
            book = stack.enter_context(self._ledger())  # first: creates the ledger's tables
            self._start_api(stack)
            self._start_notifier(stack)
            self._start_scheduler(stack)
            self._announce()
            summary = None
            if self.runtime is not None and cfg.runtime:
                summary = await self.runtime(book, self.stop)
                self.say(f"runtime stopped after {summary.bars} bars ({summary.status})")
                self._notify(Notice("bot", f"runtime stopped after {summary.bars} bars"))
            others = [p for p in self.hosted.parts if p != "runtime"]
            if not self.stop.is_set() and cfg.stay_up and others:
                await self.stop.event.wait()
            self.say("stopping")
        return summary

    def _announce(self) -> None:
        parts = ([] if self.runtime is None else ["runtime"]) + self.hosted.parts
        self.hosted.parts = parts
        api = f", API on {self.hosted.api_url} (docs: /docs)" if self.hosted.api_url else ""
        text = f"bot running: ledger {self.settings.bot.ledger}, {', '.join(parts)}{api}"
        self.say(text)
        self._notify(Notice("bot", f"bot started ({', '.join(parts)})"))

    def _start_api(self, stack: ExitStack) -> None:
        if not self.settings.bot.api:
            return
        from aitrader.ops.api import AppConfig, create_app
        from aitrader.ops.auth import TokenChecker, hash_token, new_token
        from aitrader.ops.server import BackgroundServer

        api = self.settings.api
        token_hash = api.token_hash
        if token_hash is None:  # a token for this process only, shown once (as Jupyter does)
            token = new_token()
            token_hash = hash_token(token)
            self.say(f"API token for this run (set api.token_hash to keep one): {token}")
        book = stack.enter_context(self._ledger())
        from aitrader.ops.mlmetrics import MlSource

        ml = MlSource.from_settings(self.settings)  # /ml-metrics: the mlops section's champion
        app = create_app(
            book, TokenChecker(token_hash), AppConfig(api.max_page, api.cache_seconds, ml=ml)
        )
        try:
            server = BackgroundServer(app, api.host, api.port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {api.host}:{api.port}: {exc.strerror}") from None
        stack.enter_context(server)
        self.hosted.parts.append("API")
        self.hosted.api_url = server.url

    def _start_notifier(self, stack: ExitStack) -> None:
        if not self.settings.bot.notify:
            return
        from aitrader.ops.service import NotificationService

        service = NotificationService(stack.enter_context(self._ledger()), self.settings)
        if not service.enabled:
            return
        stack.callback(service.stop)
        service.start()
        self._notify = service.notify
        self.hosted.parts.append(f"notifier ({len(service.notifiers)} channel(s))")

    def _start_scheduler(self, stack: ExitStack) -> None:
        if not self.settings.bot.scheduler:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        from aitrader.ops.scheduler import start

        scheduler = BackgroundScheduler()
        jobs = start(scheduler, self.settings, self.job_notice)
        stack.callback(scheduler.shutdown)
        self.hosted.parts.append(f"scheduler ({', '.join(jobs) or 'no job'})")

    def job_notice(self, text: str) -> None:
        """A scheduled job's message to the notifier (queued, never waits)."""
        self._notify(Notice("job", text))


def run_bot(settings: Settings, runtime: Runtime | None, say: Say) -> RunSummary | None:
    """Run the bot until its runtime ends (and, with ``stay_up``, until Ctrl-C/SIGTERM)."""
    return asyncio.run(Bot(settings, runtime, say).main())
