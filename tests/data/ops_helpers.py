"""Shared pieces of the ops tests: the API token, the app over a ledger, an httpx client, a
paper replay run with an operator hook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pandas as pd
from fastapi import FastAPI
from typer.testing import CliRunner

from aitrader.cli import app as cli_app
from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.config import BrokerConfig
from aitrader.engine.types import Bar
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.runner import Runner
from aitrader.live.summary import RunSummary
from aitrader.ops.api import AppConfig, create_app
from aitrader.ops.auth import TokenChecker, hash_token
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy.base import Environment
from aitrader.strategy.feed import StrategyFeed

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


SYMBOL = "BTC/USD"
Hook = Callable[[Runner, pd.Timestamp], None]


def sample_candles(bars: int) -> pd.DataFrame:
    """The last ``bars`` hours of the bundled BTC-USD sample."""
    return load_sample("BTC-USD-1h").iloc[-bars:]


def replay_run(
    ledger: Ledger, bars: int, hook: Hook | None = None, max_bars: int | None = None
) -> RunSummary:
    """A paper run (SMA baseline, replay at full speed) over the last ``bars`` sample bars on
    ``ledger``; ``hook(runner, time)`` runs before each bar (an operator acting)."""
    targets = StrategyFeed(SmaCross(), Environment((SYMBOL,), "1h", Settings()))
    feeds = [ReplayFeed(SYMBOL, sample_candles(bars), speed=0)]
    runner = paper_runner(feeds, targets, ledger, BrokerConfig(), config={"test": "ops"})
    if hook is not None:
        real = runner.process

        async def process(bars: Mapping[str, Bar]) -> bool:
            hook(runner, bars[SYMBOL].time)
            return await real(bars)

        runner.process = process  # type: ignore[method-assign]
    return asyncio.run(runner.run(max_bars))
