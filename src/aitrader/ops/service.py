"""The notification service of one ledger: a notifier per channel (Telegram, apprise), the
ledger watcher that feeds them, and the Telegram commands, each on its own thread."""

from __future__ import annotations

import logging
import threading

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import Ledger
from aitrader.ops.notify import AppriseSender, Notice, Notifier, TelegramSender
from aitrader.ops.telegram import TelegramCommands
from aitrader.ops.watch import LedgerWatcher, Reports

log = logging.getLogger(__name__)


def channels(settings: Settings) -> tuple[list[Notifier], TelegramSender | None]:
    """A notifier (not started) per channel the ``notify`` section and the secrets name, and
    the Telegram bot (for its commands) when there is one."""
    cfg, secrets = settings.notify, settings.secrets
    notifiers: list[Notifier] = []
    telegram = None
    if cfg.telegram_chat_ids:
        if secrets.telegram_token is None:
            raise ConfigError("notify.telegram_chat_ids needs secrets.telegram_token")
        token = secrets.telegram_token.get_secret_value()
        telegram = TelegramSender(token, cfg.telegram_chat_ids, cfg.telegram_api_url)
        notifiers.append(Notifier(telegram, cfg))
    if secrets.apprise_urls:
        urls = [u.get_secret_value() for u in secrets.apprise_urls]
        notifiers.append(Notifier(AppriseSender(urls), cfg))
    return notifiers, telegram


class NotificationService:
    """Built from the ``notify`` section and the secrets; ``enabled`` when a channel is set."""

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        cfg = settings.notify
        self.notifiers, self.telegram = channels(settings)
        self.commands: TelegramCommands | None = None
        if self.telegram is not None and cfg.commands:
            self.commands = TelegramCommands(self.telegram, ledger)
        reports = Reports(cfg.heartbeat_seconds, cfg.daily_report)
        self.watcher = LedgerWatcher(ledger, self.notify, reports=reports)
        self.poll = cfg.poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def enabled(self) -> bool:
        return bool(self.notifiers)

    def notify(self, notice: Notice) -> bool:
        """Queue ``notice`` on every channel (never waits); True when all took it."""
        return all([n.notify(notice) for n in self.notifiers])

    def start(self) -> NotificationService:
        for notifier in self.notifiers:
            notifier.start()
        loops = [self.watcher.run] + ([self.commands.run] if self.commands else [])
        for loop in loops:
            thread = threading.Thread(target=loop, args=(self._stop, self.poll), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling, take what the ledger got since the last poll (the run's last fills),
        send what is queued, close the channels."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._threads:
            try:
                self.watcher.poll()
            except Exception as exc:  # a notification problem must not stop the shutdown
                log.warning("last ledger poll failed", extra={"error": type(exc).__name__})
        for notifier in self.notifiers:
            notifier.stop(timeout)
        if self.telegram is not None:
            self.telegram.close()
