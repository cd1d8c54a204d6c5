"""Telegram commands for a run: ``/status /balance /trades /daily /pause /resume /kill`` from
allow-listed chats only (others are ignored and logged, never answered). Answers are read from
the ledger; controls go through :func:`aitrader.ops.controls.apply_control`, as the CLI and the
API do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from aitrader.live.ledger import Ledger
from aitrader.ops import views
from aitrader.ops.controls import CONTROLS, apply_control, status_payload
from aitrader.ops.notify import TelegramSender

log = logging.getLogger(__name__)

HELP = "commands: /status /balance /trades /daily /pause /resume /kill"


def _status(ledger: Ledger) -> str:
    s = status_payload(ledger, events=0)
    held = ", ".join(f"{k} {v:.6g}" for k, v in s["positions"].items()) or "flat"
    equity = "n/a" if s["equity"] is None else f"{s['equity']:,.2f}"
    paused, kill = "yes" if s["paused"] else "no", "on" if s["kill_switch"] else "off"
    return (
        f"status {s['status']}, bars {s['bars']}, last bar {s['last_bar']}\n"
        f"equity {equity}; positions: {held}\n"
        f"paused {paused}, kill switch {kill}"
    )


def _balance(ledger: Ledger) -> str:
    e = views.equity(ledger, limit=1)
    if e.last_equity is None:
        return "no equity snapshot yet"
    cash = e.curve[-1].cash
    return f"equity {e.last_equity:,.2f}, cash {cash:,.2f}, P&L since start {e.pnl:+,.2f}"


def _trades(ledger: Ledger, count: int = 5) -> str:
    page = views.trades(ledger, views.TradeFilter(is_open=False, limit=1 << 30))
    lines = [
        f"{t.exit_time:%Y-%m-%d %H:%M} {t.symbol} {'long' if t.side > 0 else 'short'} "
        f"P&L {t.pnl:+,.2f}"
        for t in page.items[-count:]
    ]
    return "\n".join(lines) or "no closed trade yet"


def _daily(ledger: Ledger) -> str:
    curve = ledger.equity_curve()["equity"]
    if curve.empty:
        return "no equity snapshot yet"
    day = curve.index[-1].normalize()
    before = curve[curve.index < day]
    start = float(before.iloc[-1]) if len(before) else float(curve.iloc[0])
    change = float(curve.iloc[-1]) - start
    return f"day {day:%Y-%m-%d}: equity {curve.iloc[-1]:,.2f}, P&L {change:+,.2f}"


READS: dict[str, Callable[[Ledger], str]] = {
    "/status": _status,
    "/balance": _balance,
    "/trades": _trades,
    "/daily": _daily,
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
