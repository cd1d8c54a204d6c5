"""The ``api`` config section: where the monitoring API listens and the hash of its token."""

from __future__ import annotations

from pydantic import Field, field_validator

from aitrader.frozen import Frozen
from aitrader.ops.auth import parse_token_hash


class ApiConfig(Frozen):
    """The monitoring API. The bearer token is stored only as a salted PBKDF2 hash (make one
    with ``aitrader serve --hash-token``), so the config file may hold it."""

    host: str = Field("127.0.0.1", description="bind address (0.0.0.0 exposes it: think twice)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0: any free port)")
    token_hash: str | None = Field(
        None, description="pbkdf2_sha256$ITERATIONS$SALT$HASH from `aitrader serve --hash-token`"
    )
    max_page: int = Field(1000, ge=1, le=100_000, description="largest page a list route returns")
    cache_seconds: float = Field(
        1.0, ge=0, le=60, description="how long /status and /metrics answers are reused"
    )

    @field_validator("token_hash")
    @classmethod
    def _well_formed(cls, value: str | None) -> str | None:
        if value is not None:
            parse_token_hash(value)
        return value


class NotifyConfig(Frozen):
    """Notifications (``notify`` section): where they go, how often, and for Telegram which
    chats may receive them and send commands. The bot token (``secrets.telegram_token``) and
    apprise URLs (``secrets.apprise_urls``: they carry webhook tokens) are secrets."""

    telegram_chat_ids: list[int] = Field(
        [], description="chats that get notices and may send /pause, /kill ... (none: off)"
    )
    telegram_api_url: str = Field("https://api.telegram.org", description="Bot API endpoint")
    commands: bool = Field(True, description="answer Telegram commands from those chats")
    poll_seconds: float = Field(2.0, gt=0, le=300, description="ledger and getUpdates polling")
    min_interval: float = Field(1.0, ge=0, le=3600, description="seconds between two sends")
    dedupe_seconds: float = Field(300.0, ge=0, description="a repeat within this is not sent")
    max_queue: int = Field(1000, ge=1, description="notices waiting; more are dropped, logged")
    retries: int = Field(3, ge=0, le=20, description="retries of a failed send")
    heartbeat_seconds: float = Field(0.0, ge=0, description="a status notice this often (0: off)")
    daily_report: bool = Field(True, description="a notice when the bars pass into a new UTC day")
    backoff: float = Field(1.0, ge=0, le=600, description="seconds before the first retry")
