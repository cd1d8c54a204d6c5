"""A local server speaking the Telegram Bot API (``sendMessage``, ``getUpdates``) for one bot
token, and a plain JSON webhook (what apprise's ``json://`` URLs post to)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from local_http import JsonHandler

TOKEN = "123456:bot-token"


@dataclass
class BotState:
    """The bot's side: messages it was asked to send, updates (commands) waiting for it."""

    messages: list[tuple[int, str]] = field(default_factory=list)
    fail_next: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    paths: list[str] = field(default_factory=list)
    updates: list[dict[str, object]] = field(default_factory=list)


class BotApi(JsonHandler):
    """``sendMessage`` and ``getUpdates`` of the Telegram Bot API, for one bot token."""

    def do_POST(self) -> None:
        state: BotState = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.paths.append(self.path)
        state.gate.wait(30)
        if self.path == f"/bot{TOKEN}/getUpdates":
            offset = int(body.get("offset", 0))
            found = [u for u in state.updates if int(str(u["update_id"])) >= offset]
            self._send(200, json.dumps({"ok": True, "result": found}))
        elif not self.path.endswith(f"/bot{TOKEN}/sendMessage"):
            self._send(404, json.dumps({"ok": False, "description": "Not Found"}))
        elif state.fail_next:
            state.fail_next -= 1
            self._send(429, json.dumps({"ok": False, "description": "Too Many Requests"}))
        else:
            state.messages.append((body["chat_id"], body["text"]))
            self._send(200, json.dumps({"ok": True, "result": {"message_id": len(state.messages)}}))


class Webhook(JsonHandler):
    """Keeps every JSON body posted to it in ``server.state`` (a list)."""

    def do_POST(self) -> None:
        self.server.state.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self._send(200, "{}")
