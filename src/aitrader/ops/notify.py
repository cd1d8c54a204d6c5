"""Notifications that never hold up trading: :meth:`Notifier.notify` only puts a notice on a
bounded queue (dropping it, logged, when the queue is full); a worker thread sends them in
order, at most one per ``min_interval`` seconds, drops a notice whose key was sent within
``dedupe_seconds``, and retries a failed send with backoff before logging it and going on.

:class:`TelegramSender` speaks the Telegram Bot API (``sendMessage``) over httpx;
:class:`AppriseSender` reaches Discord, Slack, e-mail, ntfy and the rest through apprise URLs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from aitrader.errors import AitraderError
from aitrader.ops.config import NotifyConfig

log = logging.getLogger(__name__)


class NotifyError(AitraderError):
    """A notification could not be sent."""


@dataclass(frozen=True)
class Notice:
    """What to say; ``key`` identifies repeats (default: the text)."""

    kind: str
    text: str
    key: str | None = None


class Sender(Protocol):
    def send(self, text: str) -> None:
        """Deliver ``text``; raise on failure."""


class TelegramSender:
    """The Telegram Bot API at ``api_url``: ``sendMessage`` to each allow-listed chat (a
    :class:`Sender`), to one chat, and ``getUpdates`` for the commands of those chats."""

    def __init__(
        self, token: str, chat_ids: list[int], api_url: str = "https://api.telegram.org"
    ) -> None:
        self.chat_ids = list(chat_ids)
        self.client = httpx.Client(base_url=f"{api_url}/bot{token}/", timeout=10)

    def _call(self, method: str, body: dict[str, object]) -> object:
        try:
            answer = self.client.post(method, json=body).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NotifyError(f"telegram {method} failed: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            why = answer.get("description") if isinstance(answer, dict) else answer
            raise NotifyError(f"telegram {method} refused: {why}")
        return answer.get("result")

    def send(self, text: str) -> None:
        for chat in self.chat_ids:
            self.send_to(chat, text)

    def send_to(self, chat: int, text: str) -> None:
        self._call("sendMessage", {"chat_id": chat, "text": text})

    def updates(self, offset: int) -> list[dict[str, object]]:
        """Updates from ``offset`` on (those before it are confirmed and forgotten)."""
        found = self._call("getUpdates", {"offset": offset, "timeout": 0})
        return [u for u in found if isinstance(u, dict)] if isinstance(found, list) else []

    def close(self) -> None:
        self.client.close()


class AppriseSender:
    """One notification to every apprise URL (``discord://…``, ``ntfys://…``, ``json://…``)."""

    def __init__(self, urls: list[str], title: str = "aitrader") -> None:
        import apprise

        self.title = title
        self.apprise = apprise.Apprise()
        for url in urls:
            if not self.apprise.add(url):
                raise NotifyError(f"apprise cannot use the URL of scheme {url.split(':', 1)[0]!r}")

    def send(self, text: str) -> None:
        if not self.apprise.notify(body=text, title=self.title):
            raise NotifyError("apprise: a notification service refused or failed")


class Notifier:
    """A queue and one worker thread in front of a :class:`Sender`."""

    def __init__(
        self,
        sender: Sender,
        config: NotifyConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sender, self.config = sender, config or NotifyConfig()
        self.clock, self.sleep = clock, sleep
        self.queue: queue.Queue[Notice | None] = queue.Queue(self.config.max_queue)
        self.sent: dict[str, float] = {}
        self.delivered = self.failed = self.dropped = 0
        self.thread = threading.Thread(target=self._work, name="notifier", daemon=True)
        self._last = float("-inf")

    def start(self) -> Notifier:
        self.thread.start()
        return self

    def notify(self, notice: Notice) -> bool:
        """Queue ``notice`` without waiting; False when the queue is full (dropped, logged)."""
        try:
            self.queue.put_nowait(notice)
        except queue.Full:
            self.dropped += 1
            log.warning("notification dropped: queue full", extra={"kind": notice.kind})
            return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Send what is queued, then end the worker."""
        self.queue.put(None)
        self.thread.join(timeout)

    def _work(self) -> None:
        while (notice := self.queue.get()) is not None:
            key = notice.key or notice.text
            seen = self.sent.get(key)
            if seen is not None and self.clock() - seen < self.config.dedupe_seconds:
                continue
            wait = self._last + self.config.min_interval - self.clock()
            if wait > 0:
                self.sleep(wait)
            if self._deliver(notice):
                self.sent[key] = self._last = self.clock()

    def _deliver(self, notice: Notice) -> bool:
        for attempt in range(self.config.retries + 1):
            try:
                self.sender.send(notice.text)
            except Exception as exc:  # a failed send must never stop the worker
                log.warning("notification failed", extra={"kind": notice.kind, "error": str(exc)})
                if attempt < self.config.retries:
                    self.sleep(self.config.backoff * 2**attempt)
                continue
            self.delivered += 1
            return True
        self.failed += 1
        return False
