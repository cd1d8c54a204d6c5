"""Shared pieces of the ops tests: the API token, the app over a ledger, an httpx client."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from typer.testing import CliRunner

from aitrader.cli import app as cli_app
from aitrader.live.ledger import Ledger
from aitrader.ops.api import AppConfig, create_app
from aitrader.ops.auth import TokenChecker, hash_token

TOKEN = "test-token-0123456789abcdef"
TOKEN_HASH = hash_token(TOKEN, iterations=1000)


def app_for(ledger: Ledger, max_page: int = 1000) -> FastAPI:
    return create_app(ledger, TokenChecker(TOKEN_HASH), AppConfig(max_page=max_page))


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def paper_replay(root: Path, bars: int) -> Path:
    """``aitrader paper`` over the last ``bars`` bundled BTC hours (SMA baseline, costs on):
    the finished run's ledger in ``root``."""
    path = root / "paper.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", str(bars), "--ledger", str(path)]
    result = CliRunner().invoke(cli_app, args, env={"AITRADER__DATA__DIR": str(root / "store")})
    assert result.exit_code == 0, result.output
    return path
