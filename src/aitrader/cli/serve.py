"""``aitrader serve``: the monitoring API over an existing ledger, and ``--hash-token`` /
``--new-token`` to make the token hash its config needs. FastAPI and uvicorn are imported only
when the server starts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aitrader.cli.common import console, err_console, settings
from aitrader.errors import ConfigError
from aitrader.ops.auth import hash_token, new_token

if TYPE_CHECKING:
    from aitrader.config import Settings

LedgerOption = typer.Option(None, "--ledger", help="The run's SQLite ledger file.")
HostOption = typer.Option(None, "--host", help="Bind address (default: api.host, 127.0.0.1).")
PortOption = typer.Option(None, "--port", help="TCP port (default: api.port, 8080).")
HashOption = typer.Option(
    False, "--hash-token", help="Read a token (prompt or stdin), print its hash for the config."
)
NewOption = typer.Option(False, "--new-token", help="Make a random token and print its hash.")


def _read_token() -> str:
    if sys.stdin.isatty():
        token: str = typer.prompt("API token", hide_input=True, confirmation_prompt=True)
        return token
    return sys.stdin.readline().strip()


def _print_hash(token: str, show: bool) -> None:
    try:
        hashed = hash_token(token)
    except ValueError as exc:
        raise ConfigError(f"--hash-token: {exc}") from None
    if show:
        err_console.print(
            f"token (give it to API clients, keep it secret): {token}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"api:\n  token_hash: {hashed}", highlight=False, soft_wrap=True)


def serve_command(
    ctx: typer.Context,
    ledger: Path | None = LedgerOption,
    host: str | None = HostOption,
    port: int | None = PortOption,
    hash_token_: bool = HashOption,
    new_token_: bool = NewOption,
) -> None:
    """Serve the monitoring API (status, trades, risk, metrics, controls) over a run's ledger,
    and send its notices (Telegram, apprise) when the notify section names a channel.

    Needs api.token_hash in the config (or AITRADER__API__TOKEN_HASH): make one with
    `aitrader serve --new-token` (or `--hash-token` for a token of your own). Docs at /docs.

    Example: aitrader serve --ledger paper.db --port 8080
    """
    if hash_token_ or new_token_:
        _print_hash(new_token() if new_token_ else _read_token(), show=new_token_)
        return
    if ledger is None:
        raise ConfigError("--ledger FILE is required (the run's ledger)")
    if not ledger.is_file():
        raise ConfigError(f"--ledger {ledger}: no such ledger file")
    cfg = settings(ctx)
    if cfg.api.token_hash is None:
        raise ConfigError(
            "api.token_hash is not set: make one with `aitrader serve --new-token` and put it in "
            "the config (api: token_hash: ...) or AITRADER__API__TOKEN_HASH"
        )
    _serve(ledger, cfg, (host or cfg.api.host, cfg.api.port if port is None else port))


def _serve(ledger: Path, cfg: Settings, where: tuple[str, int]) -> None:
    """The API (and the notification service, when configured) until Ctrl-C or SIGTERM."""
    token_hash = cfg.api.token_hash
    assert token_hash is not None
    try:
        from aitrader.ops.api import AppConfig, create_app
        from aitrader.ops.server import bind, serve_forever
    except ImportError as exc:
        raise ConfigError(
            f"the API needs the ops extra: pip install 'aitrader[ops]' ({exc})"
        ) from None
    from aitrader.live.ledger import Ledger
    from aitrader.live.records import secret_values
    from aitrader.ops.auth import TokenChecker
    from aitrader.ops.service import NotificationService

    try:
        sock = bind(*where)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {where[0]}:{where[1]}: {exc.strerror}") from None
    with Ledger(ledger, secret_values(cfg.secrets)) as book:
        from aitrader.ops.mlmetrics import MlSource

        options = AppConfig(cfg.api.max_page, cfg.api.cache_seconds, ml=MlSource.from_settings(cfg))
        app = create_app(book, TokenChecker(token_hash), options)
        notices = NotificationService(book, cfg)
        bound = sock.getsockname()
        where_text = f"http://{bound[0]}:{bound[1]}"
        channels = f", {len(notices.notifiers)} notification channel(s)" if notices.enabled else ""
        err_console.print(
            f"serving {ledger} on {where_text} (docs: /docs){channels}", soft_wrap=True
        )
        if notices.enabled:
            notices.start()
        try:
            serve_forever(app, sock)
        finally:
            if notices.enabled:
                notices.stop()
