"""``aitrader paper`` (stored bars through the live runtime, simulated fills, a real ledger) and
``aitrader live`` (refuses: keys and ``--confirm-live`` are required, and order routing to an
exchange is not available in this version)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from aitrader.cli.common import JsonOption, console, emit_json, err_console, settings, table
from aitrader.config import Settings
from aitrader.data.datasets import load_dataset
from aitrader.data.store import Store
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.errors import ConfigError
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.live.runner import RunSummary, paper_runner

STRATEGIES = ("sma-cross",)
LIVE_UNAVAILABLE = (
    "live order routing is not available in this version of aitrader: no order was sent. "
    "Use `aitrader paper` to run the same decision path with simulated fills."
)


def _targets(strategy: str, candles: pd.DataFrame, fast: int, slow: int) -> np.ndarray:
    """The strategy's target fractions; SMA crossover values at bar t use closes ≤ t only."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: available: {', '.join(STRATEGIES)}")
    return sma_crossover_targets(candles["close"].to_numpy(np.float64), fast, slow)


def _bracket(value: float | None, name: str) -> np.ndarray:
    if value is not None and not 0 < value < 1:
        raise ConfigError(f"{name} must be a fraction in (0, 1), got {value}")
    return np.full((1, 1), math.nan if value is None else value)


def _default_ledger() -> Path:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return Path(f"paper-{stamp}.db")


def _print_paper(summary: RunSummary, ledger: Path, symbol: str) -> None:
    rows: list[list[object]] = [
        ["symbol", symbol],
        ["bars", summary.bars],
        ["orders", summary.orders],
        ["fills", summary.fills],
        ["final equity", f"{summary.equity:.2f}"],
        ["last bar", str(summary.last_bar)],
    ]
    console.print(table("Paper run (simulated fills)", ["", "value"], rows))
    console.print(f"ledger: {ledger}", highlight=False, soft_wrap=True)


def paper_command(
    ctx: typer.Context,
    replay: str = typer.Option(..., "--replay", help="Stored bars: sample:NAME or EX:SYM:TF."),
    speed: float = typer.Option(0.0, "--speed", help="Bar durations per second (0: max)."),
    ledger: Path | None = typer.Option(  # noqa: B008
        None, "--ledger", help="SQLite ledger file (an interrupted run of the same replay resumes)."
    ),
    strategy: str = typer.Option("sma-cross", "--strategy", help="Strategy: sma-cross."),
    fast: int = typer.Option(10, "--fast", help="Fast SMA window (bars)."),
    slow: int = typer.Option(30, "--slow", help="Slow SMA window (bars)."),
    stop_loss: float | None = typer.Option(0.03, "--stop-loss", help="Stop, fraction of entry."),
    take_profit: float | None = typer.Option(None, "--take-profit", help="Target, fraction."),
    bars: int | None = typer.Option(None, "--bars", help="Replay only the last N bars."),
    as_json: bool = JsonOption,
) -> None:
    """Paper-trade stored bars through the live runtime: risk-checked orders, simulated fills,
    every intent and fill in a SQLite ledger. Given the ledger of an interrupted run of the same
    replay and settings, it resumes after the last bar processed; a ledger of another run is
    refused.

    Example: aitrader paper --replay sample:BTC-USD-1h --speed 0 --ledger paper.db
    """
    cfg = settings(ctx)
    loaded = load_dataset(replay, Store(cfg.data.dir))
    candles = loaded.candles if bars is None else loaded.candles.iloc[-bars:]
    if candles.empty:
        raise ConfigError(f"--replay {replay}: no bars to replay")
    fraction = _targets(strategy, candles, fast, slow).reshape(-1, 1)
    feed = ArrayFeed(
        fraction,
        np.full((1, 1), math.nan),
        _bracket(stop_loss, "--stop-loss"),
        _bracket(take_profit, "--take-profit"),
    )
    path = ledger or _default_ledger()
    config = BrokerConfig.from_costs(cfg.costs)
    run: dict[str, object] = {
        "replay": replay,
        "bars": bars,
        "strategy": strategy,
        "fast": fast,
        "slow": slow,
    }
    run |= {"stop_loss": stop_loss, "take_profit": take_profit}
    with Ledger(path, secret_values(cfg.secrets)) as book:
        runner = paper_runner(
            [ReplayFeed(loaded.symbol, candles, speed)], feed, book, config, cfg.risk, run
        )
        summary = asyncio.run(runner.run())
    if as_json:
        emit_json(
            {
                **{"symbol": loaded.symbol, "bars": summary.bars, "orders": summary.orders},
                **{"fills": summary.fills, "equity": summary.equity, "ledger": str(path)},
                **{"resumed_from": summary.resumed_from},
            }
        )
        return
    if summary.resumed_from >= len(candles):
        message = (
            f"the ledger's run was already complete ({summary.resumed_from} bars): resumed nothing"
        )
        console.print(message, highlight=False, soft_wrap=True)
    elif summary.resumed_from:
        console.print(
            f"resumed from bar {summary.resumed_from + 1} of {len(candles)} "
            f"(after {summary.resumed_after})",
            highlight=False,
            soft_wrap=True,
        )
    _print_paper(summary, path, loaded.symbol)


def _has_keys(cfg: Settings, exchange: str) -> bool:
    """Whether the environment / secrets file holds both an API key and a secret."""
    credentials = cfg.secrets.exchanges.get(exchange.strip().lower())
    if credentials is None or credentials.api_key is None or credentials.secret is None:
        return False
    return all(s.get_secret_value() for s in (credentials.api_key, credentials.secret))


def _refuse(message: str) -> None:
    err_console.print(f"[bold red]refused:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def live_command(
    ctx: typer.Context,
    exchange: str = typer.Option(..., "--exchange", help="ccxt exchange id, e.g. binance."),
    symbol: str = typer.Option(..., "--symbol", help="Unified symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Bar timeframe."),
    confirm_live: bool = typer.Option(
        False, "--confirm-live", help="Confirm trading real money (required)."
    ),
) -> None:
    """Live trading with real orders: needs API keys from the environment or the secrets file
    and --confirm-live. Order routing is not available in this version: it always refuses.
    """
    cfg = settings(ctx)
    name = exchange.strip().lower()
    if not _has_keys(cfg, name):
        variable = f"AITRADER__SECRETS__EXCHANGES__{name.upper()}__API_KEY (and __SECRET)"
        _refuse(f"no API keys for {name}: set {variable} or a secrets file (mode 0600)")
    if not confirm_live:
        _refuse(
            f"live trading of {symbol} ({timeframe}) on {name} places real orders with real "
            "money; add --confirm-live to confirm"
        )
    _refuse(LIVE_UNAVAILABLE)
