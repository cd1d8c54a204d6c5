"""``aitrader paper`` (stored or live bars through the live runtime, simulated fills, a real
ledger) and ``aitrader live`` (real orders through ccxt; needs API keys and ``--confirm-live``)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from aitrader.live.feeds import (
    BarFeed,
    PollingConfig,
    PollingFeed,
    ReplayFeed,
    WebsocketConfig,
    WebsocketFeed,
)
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.live.runner import PROGRESS, Runner, RunSummary, paper_runner, run_fingerprint
from aitrader.live.targets import SmaCrossTargets
from aitrader.live.trading import (
    exchange_client,
    history,
    latest_closed_bar,
    live_fingerprint,
    live_runner,
    resume_point,
    server_clock,
)

STRATEGIES = ("sma-cross",)
FEEDS = ("ws", "rest")

FeedOption = typer.Option(
    "ws", "--feed", help="Live bars: ws (websocket klines) or rest (polling)."
)
PollOption = typer.Option(5.0, "--poll", help="Seconds between REST polls (rest feed, fallback).")
ApiUrlOption = typer.Option(
    None, "--api-url", help="Another Binance-compatible REST endpoint (a testnet, the emulator)."
)
WsUrlOption = typer.Option(None, "--ws-url", help="Its websocket endpoint (with --api-url).")


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


def _print_paper(
    summary: RunSummary, ledger: Path, symbol: str, title: str = "Paper run (simulated fills)"
) -> None:
    rows: list[list[object]] = [
        ["symbol", symbol],
        ["bars", summary.bars],
        ["orders", summary.orders],
        ["fills", summary.fills],
        ["final equity", f"{summary.equity:.2f}"],
        ["last bar", str(summary.last_bar)],
    ]
    console.print(table(title, ["", "value"], rows))
    console.print(f"ledger: {ledger}", highlight=False, soft_wrap=True)


def paper_command(
    ctx: typer.Context,
    replay: str | None = typer.Option(
        None, "--replay", help="Stored bars: sample:NAME or EX:SYM:TF (offline)."
    ),
    exchange: str | None = typer.Option(
        None, "--exchange", help="Live bars from this ccxt exchange instead (public data)."
    ),
    symbol: str | None = typer.Option(None, "--symbol", help="With --exchange: e.g. BTC/USDT."),
    timeframe: str = typer.Option("1m", "--timeframe", help="With --exchange: bar timeframe."),
    max_bars: int | None = typer.Option(None, "--max-bars", help="Stop after N live bars."),
    bars_feed: str = FeedOption,
    poll: float = PollOption,
    api_url: str | None = ApiUrlOption,
    ws_url: str | None = WsUrlOption,
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

    With --exchange/--symbol/--timeframe instead of --replay it trades live bars of that market
    (closed bars only, missed bars back-filled) with the same simulated fills.

    Example: aitrader paper --replay sample:BTC-USD-1h --speed 0 --ledger paper.db
    """
    cfg = settings(ctx)
    if (replay is None) == (exchange is None):
        raise ConfigError("give either --replay (stored bars) or --exchange and --symbol")
    if exchange is not None:
        if symbol is None:
            raise ConfigError("--exchange needs --symbol (e.g. BTC/USDT)")
        name = exchange.strip().lower()
        source = LiveBars(name, symbol, timeframe, bars_feed, poll, api_url, ws_url)
        brackets = (stop_loss, take_profit)
        _paper_live(cfg, source, ledger, (fast, slow), brackets, max_bars, as_json)
        return
    assert replay is not None
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


@dataclass(frozen=True)
class LiveBars:
    """Where live bars come from: the exchange, the market, and websocket or REST."""

    exchange: str
    symbol: str
    timeframe: str
    feed: str = "ws"
    poll: float = 5.0
    api_url: str | None = None
    ws_url: str | None = None

    def __post_init__(self) -> None:
        if self.feed not in FEEDS:
            raise ConfigError(f"--feed {self.feed!r}: use {' or '.join(FEEDS)}")
        if self.poll <= 0:
            raise ConfigError(f"--poll must be > 0 seconds, got {self.poll}")

    def describe(self) -> dict[str, object]:
        return {"exchange": self.exchange, "symbol": self.symbol, "timeframe": self.timeframe}


def _start(
    client: Any, bars: LiveBars, start: pd.Timestamp | None, warmup: int
) -> tuple[pd.Timestamp, pd.DataFrame]:
    """Where the run starts (the last bar processed, or the latest closed bar) and the
    history up to it for the strategy's warm-up."""
    client.load_markets()
    if bars.symbol not in client.markets:
        raise ConfigError(f"--symbol {bars.symbol}: {client.id} has no such market")
    if start is None:
        start = latest_closed_bar(client, bars.symbol, bars.timeframe)
    return start, history(client, bars.symbol, bars.timeframe, start, warmup + 1)


def _feed(cfg: Settings, client: Any, bars: LiveBars, start: pd.Timestamp) -> BarFeed:
    """The closed bars after ``start``: websocket klines (REST back-fill and fallback), or
    REST polling. Call inside the event loop that consumes it."""
    polling = PollingConfig(interval=bars.poll)
    if bars.feed == "rest":
        clock = server_clock(client)
        return PollingFeed(client, bars.symbol, bars.timeframe, start, polling, clock)
    stream = exchange_client(
        bars.exchange, cfg, bars.api_url, keys=False, pro=True, ws_url=bars.ws_url
    )
    config = WebsocketConfig(polling=polling)
    return WebsocketFeed(stream, bars.symbol, bars.timeframe, start, config)


def _drive(
    cfg: Settings,
    client: Any,
    bars: LiveBars,
    start: pd.Timestamp,
    build: Callable[[list[BarFeed]], Runner],
    max_bars: int | None,
) -> tuple[Runner, RunSummary]:
    """Build the runner on a live feed and run it until ``max_bars`` (or Ctrl-C)."""

    async def main() -> tuple[Runner, RunSummary]:
        feed = _feed(cfg, client, bars, start)
        try:
            runner = build([feed])
            return runner, await runner.run(max_bars)
        finally:
            close = getattr(feed, "close", None)
            if close is not None:
                await close()

    return asyncio.run(main())


def _paper_live(
    cfg: Settings,
    bars: LiveBars,
    ledger: Path | None,
    windows: tuple[int, int],
    brackets: tuple[float | None, float | None],
    max_bars: int | None,
    as_json: bool,
) -> None:
    """Paper trading on an exchange's live bars: its market data, the simulated broker."""
    client = exchange_client(bars.exchange, cfg, bars.api_url, keys=False)
    path = ledger or _default_ledger()
    run = bars.describe() | {"strategy": "sma-cross", "fast": windows[0], "slow": windows[1]}
    run |= {"stop_loss": brackets[0], "take_profit": brackets[1]}
    config = BrokerConfig.from_costs(cfg.costs)
    symbol = bars.symbol
    with Ledger(path, secret_values(cfg.secrets)) as book:
        state = book.load_state(PROGRESS)
        probe = ([ReplayFeed(symbol, pd.DataFrame())], SmaCrossTargets([symbol], *windows))
        same = state is not None and state.get("fingerprint") == run_fingerprint(
            *probe, config, cfg.risk, run
        )
        start = pd.Timestamp(state["last_bar"]) if same and state is not None else None
        start, candles = _start(client, bars, start, windows[1])
        targets = SmaCrossTargets([symbol], *windows, *brackets, history={symbol: candles})

        def build(feeds: list[BarFeed]) -> Runner:
            return paper_runner(feeds, targets, book, config, cfg.risk, run)

        _, summary = _drive(cfg, client, bars, start, build, max_bars)
    if as_json:
        emit_json(
            {
                **{"symbol": symbol, "bars": summary.bars, "orders": summary.orders},
                **{"fills": summary.fills, "equity": summary.equity, "ledger": str(path)},
                **{"resumed_from": summary.resumed_from},
            }
        )
        return
    _print_paper(summary, path, symbol)


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
    symbol: str = typer.Option(..., "--symbol", help="Unified spot symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Bar timeframe."),
    confirm_live: bool = typer.Option(
        False, "--confirm-live", help="Confirm trading real money (required)."
    ),
    ledger: Path | None = typer.Option(  # noqa: B008
        None, "--ledger", help="SQLite ledger (the same file resumes and reconciles the run)."
    ),
    strategy: str = typer.Option("sma-cross", "--strategy", help="Strategy: sma-cross."),
    fast: int = typer.Option(10, "--fast", help="Fast SMA window (bars)."),
    slow: int = typer.Option(30, "--slow", help="Slow SMA window (bars)."),
    stop_loss: float | None = typer.Option(0.03, "--stop-loss", help="Stop, fraction of entry."),
    take_profit: float | None = typer.Option(None, "--take-profit", help="Target, fraction."),
    max_bars: int | None = typer.Option(None, "--max-bars", help="Stop after N bars."),
    bars_feed: str = FeedOption,
    poll: float = PollOption,
    api_url: str | None = ApiUrlOption,
    ws_url: str | None = WsUrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Live trading with real orders: the paper runtime's decision path, orders through ccxt.

    Needs API keys (AITRADER__SECRETS__EXCHANGES__<NAME>__API_KEY / __SECRET or the secrets
    file) and --confirm-live. Every order is written to the ledger before it is sent; run the
    same command on the same ledger to resume: the run reconciles with the exchange first
    (adopts fills made while down, cancels stale orders) and refuses to trade on a mismatch.

    Example: aitrader live --exchange binance --symbol BTC/USDT --timeframe 1h --confirm-live
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
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: available: {', '.join(STRATEGIES)}")
    bars = LiveBars(name, symbol, timeframe, bars_feed, poll, api_url, ws_url)
    client = exchange_client(name, cfg, api_url)
    path = ledger or Path(f"live-{name}-{symbol.replace('/', '')}-{timeframe}.db")
    run = bars.describe() | {"strategy": strategy, "fast": fast, "slow": slow}
    run |= {"stop_loss": stop_loss, "take_profit": take_profit}
    with Ledger(path, secret_values(cfg.secrets)) as book:
        start, candles = _start(
            client, bars, resume_point(book, live_fingerprint([symbol], cfg.risk, run)), slow
        )
        targets = SmaCrossTargets(
            [symbol], fast, slow, stop_loss, take_profit, history={symbol: candles}
        )

        def build(feeds: list[BarFeed]) -> Runner:
            return live_runner(client, [symbol], targets, feeds, book, cfg.risk, run)

        runner, summary = _drive(cfg, client, bars, start, build, max_bars)
        report = getattr(runner.engine.broker, "reconciled", None)
    changes = report.lines() if report is not None else []
    if as_json:
        emit_json(
            {
                **{"symbol": symbol, "bars": summary.bars, "orders": summary.orders},
                **{"fills": summary.fills, "equity": summary.equity, "ledger": str(path)},
                **{"resumed_from": summary.resumed_from, "reconciled": changes},
            }
        )
        return
    for line in changes:
        console.print(f"reconciled: {line}", highlight=False, soft_wrap=True)
    _print_paper(summary, path, symbol, "Live run (exchange fills)")
