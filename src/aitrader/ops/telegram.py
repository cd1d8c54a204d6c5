"""Telegram commands for a run: ``/status /balance /trades /daily /pause /resume /kill
/flatten`` from allow-listed chats only (others are ignored and logged, never answered).
Answers are read from the ledger; controls go through
:func:`aitrader.ops.controls.apply_control`, as the CLI and the API do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from aitrader.live.ledger import Ledger
from aitrader.ops.controls import CONTROLS, apply_control
from aitrader.ops.notify import TelegramSender
from aitrader.ops.texts import balance_text, daily_text, status_text, trades_text

log = logging.getLogger(__name__)

HELP = "commands: /status /balance /trades /daily /pause /resume /kill /flatten"


READS: dict[str, Callable[[Ledger], str]] = {
    "/status": status_text,
    "/balance": balance_text,
    "/trades": trades_text,
    "/daily": daily_text,
}


class TelegramCommands:
    """Polls ``getUpdates`` and answers the commands of the allow-listed chats."""

    def __init__(self, bot: TelegramSender, ledger: Ledger) -> None:
        self.bot, self.ledger = bot, ledger
        self.offset = 0
        self.allowed = set(bot.chat_ids)

    def answer(self, chat: int, text: str) -> str:
        command = text.strip().split()[0].split("@")[0].lower() if text.strip() else ""
        if command in READS:
            return READS[command](self.ledger)
        action = command.lstrip("/")
        if command.startswith("/") and action in CONTROLS:
            _, said = apply_control(self.ledger, action, f"telegram chat {chat}")
            return said
        return HELP

    def poll(self) -> int:
        """Answer the updates since the last poll; how many commands were answered."""
        answered = 0
        for update in self.bot.updates(self.offset):
            self.offset = max(self.offset, int(str(update.get("update_id", 0))) + 1)
            message = update.get("message")
            if not isinstance(message, dict):
                continue
            chat = int(message.get("chat", {}).get("id", 0))
            if chat not in self.allowed:
                log.warning("telegram command from a chat not allowed", extra={"chat": chat})
                continue
            self.bot.send_to(chat, self.answer(chat, str(message.get("text", ""))))
            answered += 1
        return answered

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Poll until ``stop`` is set; errors are logged and the loop goes on."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                log.warning("telegram commands failed", extra={"error": type(exc).__name__})
            stop.wait(interval)
