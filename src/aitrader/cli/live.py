"""``aitrader paper`` (stored or live bars through the live runtime, simulated fills, a real
ledger) and ``aitrader live`` (real orders through ccxt; needs API keys and ``--confirm-live``).

Both decide bar by bar with a strategy (``--strategy``, the same contract as ``aitrader
backtest``): the SMA-crossover baseline by default, a trained model bundle with ``--model``, or
a user's own class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from aitrader.cli.common import (
    JsonOption,
    TrustBundleOption,
    console,
    emit_json,
    err_console,
    table,
)
from aitrader.cli.strategy import (
    ModelOption,
    ParamOption,
    RunConfigOption,
    StopOption,
    StrategyChoice,
    StrategyOption,
    TargetOption,
    choice,
    run_settings,
    warn_in_sample,
)
from aitrader.config import Settings
from aitrader.data.datasets import load_dataset
from aitrader.data.store import Store
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed_policy import TargetFeed
from aitrader.errors import ConfigError
from aitrader.live.build import paper_runner, resume_point, run_ledger
from aitrader.live.feeds import BarFeed, ReplayFeed
from aitrader.live.fingerprint import live_fingerprint, run_fingerprint, stall_after_of
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.live.runner import GuardConfig, Runner
from aitrader.live.summary import RunSummary
from aitrader.names import path_segment
from aitrader.ops.bot import StopSignal
from aitrader.strategy.config import RunConfig

FEEDS = ("ws", "rest")

FeedOption = typer.Option("ws", "--feed", help="Live bars: ws (websocket klines) or rest.")
PollOption = typer.Option(5.0, "--poll", help="Seconds between REST polls (rest feed, fallback).")
ApiUrlOption = typer.Option(
    None, "--api-url", help="Another Binance-compatible REST endpoint (a testnet, the emulator)."
)
WsUrlOption = typer.Option(None, "--ws-url", help="Its websocket endpoint (with --api-url).")
MaxBarsOption = typer.Option(None, "--max-bars", help="Stop after N bars (in all, resumes too).")
ReplayOption = typer.Option(
    None, "--replay", help="Stored bars: sample:NAME or EX:SYM:TF (offline)."
)
PaperExchangeOption = typer.Option(
    None, "--exchange", help="Live bars from this ccxt exchange instead (public data)."
)
PaperSymbolOption = typer.Option(
    None, "--symbol", help="With --exchange: e.g. BTC/USDT (repeat for more)."
)
PaperTimeframeOption = typer.Option(
    None, "--timeframe", help="With --exchange: bar timeframe [default: 1m]."
)
PaperLedgerOption = typer.Option(
    None, "--ledger", help="SQLite ledger file (the same run on it resumes)."
)
LiveExchangeOption = typer.Option(
    None, "--exchange", help="ccxt exchange id, e.g. binance (or run.exchange)."
)
LiveSymbolOption = typer.Option(
    None, "--symbol", help="Unified spot symbol, e.g. BTC/USDT (repeat; or run.symbols)."
)
ConfirmLiveOption = typer.Option(
    False, "--confirm-live", help="Confirm trading real money (required)."
)
LiveLedgerOption = typer.Option(
    None, "--ledger", help="SQLite ledger (the same file resumes and reconciles the run)."
)
CapitalOption = typer.Option(
    None, "--capital", help="Quote currency the run trades with (default: the whole balance)."
)


def _default_ledger(kind: str = "paper") -> Path:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    return Path(f"{kind}-{stamp}.db")


def _report(summary: RunSummary, ledger: Path, symbol: str, title: str) -> None:
    rows: list[list[object]] = [
        ["symbol", symbol],
        ["bars", summary.bars],
        ["orders", summary.orders],
        ["fills", summary.fills],
        ["final equity", f"{summary.equity:.2f}"],
        ["last bar", str(summary.last_bar)],
        ["status", summary.status + (" (paused)" if summary.paused else "")],
    ]
    if summary.errors:
        rows.append(["exchange errors", summary.errors])
    console.print(table(title, ["", "value"], rows))
    console.print(f"ledger: {ledger}", highlight=False, soft_wrap=True)


def _emit(summary: RunSummary, ledger: Path, symbol: str, extra: dict[str, object]) -> None:
    emit_json(
        {
            **{"symbol": symbol, "bars": summary.bars, "orders": summary.orders},
            **{"fills": summary.fills, "equity": summary.equity, "ledger": str(ledger)},
            **{"resumed_from": summary.resumed_from, "paused": summary.paused},
            **{"status": summary.status, "errors": summary.errors},
            **extra,
        }
    )


def paper_command(
    ctx: typer.Context,
    replay: str | None = ReplayOption,
    speed: float = typer.Option(0.0, "--speed", help="Replay: bar durations per second (0: max)."),
    bars: int | None = typer.Option(None, "--bars", help="Replay only the last N bars."),
    exchange: str | None = PaperExchangeOption,
    symbols: list[str] | None = PaperSymbolOption,
    timeframe: str | None = PaperTimeframeOption,
    bars_feed: str = FeedOption,
    poll: float = PollOption,
    api_url: str | None = ApiUrlOption,
    ws_url: str | None = WsUrlOption,
    ledger: Path | None = PaperLedgerOption,
    strategy_spec: str | None = StrategyOption,
    params: list[str] | None = ParamOption,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    stop_loss: float | None = StopOption,
    take_profit: float | None = TargetOption,
    max_bars: int | None = MaxBarsOption,
    config: Path | None = RunConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Paper-trade through the live runtime: risk-checked orders, simulated fills (the
    backtest's broker), every intent and fill in a SQLite ledger.

    --replay plays stored bars (offline); --exchange/--symbol/--timeframe trades an exchange's
    live closed bars (websocket or REST, missed bars back-filled). Given the ledger of an
    interrupted run of the same settings it resumes after the last bar processed; a ledger of
    another run is refused. --strategy decides (default: the SMA-crossover baseline, NOT a
    model; the model strategy with --model); a replay equals `aitrader backtest` with the same
    settings.

    Example: aitrader paper --replay sample:BTC-USD-1h --speed 0 --ledger paper.db
    """
    cfg = run_settings(ctx, config)
    run = cfg.run
    strategy = choice(cfg, strategy_spec, params, model, (stop_loss, take_profit), trust_bundle)
    replay, exchange = _paper_mode(run, replay, exchange)
    symbols, timeframe = symbols or run.symbols, timeframe or run.timeframe or "1m"
    if exchange is not None:
        if not symbols:
            raise ConfigError("--exchange needs --symbol (e.g. BTC/USDT)")
        name = exchange.strip().lower()
        source = LiveBars(name, tuple(symbols), timeframe, bars_feed, poll, api_url, ws_url)
        _paper_live(cfg, source, ledger, strategy, max_bars, as_json)
        return
    assert replay is not None
    _paper_replay(cfg, replay, bars, speed, ledger, strategy, max_bars, as_json)


def _paper_mode(
    run: RunConfig, replay: str | None, exchange: str | None
) -> tuple[str | None, str | None]:
    """Stored bars (``--replay``, or the run config's one data set) or an exchange's live bars
    (``--exchange`` or the run config's): exactly one of the two."""
    exchange = exchange or (run.exchange if replay is None else None)
    if replay is None and exchange is None and len(run.data) == 1:
        replay = run.data[0]
    if (replay is None) == (exchange is None):
        raise ConfigError("give either --replay (stored bars) or --exchange and --symbol")
    return replay, exchange


def _paper_replay(
    cfg: Settings,
    replay: str,
    bars: int | None,
    speed: float,
    ledger: Path | None,
    strategy: StrategyChoice,
    max_bars: int | None,
    as_json: bool,
) -> None:
    plan = replay_plan(cfg, replay, bars, speed, strategy)
    path = ledger or _default_ledger()
    with Ledger(path, secret_values(cfg.secrets)) as book:
        summary = asyncio.run(replay_runner(plan, cfg, book).run(max_bars))
    if as_json:
        _emit(summary, path, plan.symbol, {})
        return
    if summary.resumed_from >= len(plan.candles):
        message = (
            f"the ledger's run was already complete ({summary.resumed_from} bars): resumed nothing"
        )
        console.print(message, highlight=False, soft_wrap=True)
    elif summary.resumed_from:
        console.print(
            f"resumed from bar {summary.resumed_from + 1} of {len(plan.candles)} "
            f"(after {summary.resumed_after})",
            highlight=False,
            soft_wrap=True,
        )
    _report(summary, path, plan.symbol, "Paper run (simulated fills)")


@dataclass(frozen=True)
class ReplayPlan:
    """A paper replay ready to run: the replayed candles, their feed, the strategy's targets
    (warmed up on the bars before), the broker settings and the run's description."""

    symbol: str
    candles: pd.DataFrame
    feeds: list[BarFeed]
    targets: TargetFeed
    broker: BrokerConfig
    run: dict[str, object]


def replay_plan(
    cfg: Settings, replay: str, bars: int | None, speed: float, strategy: StrategyChoice
) -> ReplayPlan:
    """The paper replay of ``replay`` (``--replay``, or run.data) from the config and options."""
    loaded = load_dataset(replay, Store(cfg.data.dir))
    frame, start = _window(loaded.candles, cfg.run.start, cfg.run.end)
    warmup = strategy.history()
    if bars is not None and start is not None:
        raise ConfigError("give --bars or run.start, not both")
    # the bars before the replayed ones warm the strategy up, as those before a backtest's start
    first = len(frame) - bars if bars is not None else (warmup if start is None else start)
    candles, before = frame.iloc[max(first, 0) :], frame.iloc[: max(first, 0)]
    if candles.empty:
        raise ConfigError(f"--replay {replay}: no bars to replay")
    warn_in_sample(strategy, candles.index[0], candles.index[-1])
    if len(before) < warmup:
        raise ConfigError(
            f"--replay {replay}: strategy {strategy.name} needs {warmup} bars of history before "
            f"the replayed ones, {len(before)} are left: use a smaller --bars"
        )
    targets = strategy.feed(cfg, [loaded.symbol], loaded.timeframe, {loaded.symbol: before})
    run: dict[str, object] = {"replay": replay, "bars": bars, **strategy.describe()}
    feeds: list[BarFeed] = [ReplayFeed(loaded.symbol, candles, speed)]
    broker = BrokerConfig.from_costs(cfg.costs)
    return ReplayPlan(loaded.symbol, candles, feeds, targets, broker, run)


def replay_runner(
    plan: ReplayPlan, cfg: Settings, book: Ledger, feeds: list[BarFeed] | None = None
) -> Runner:
    """The paper runner of ``plan`` on ``book``; ``feeds`` replace the plan's (a bot's feeds
    that end when it stops) without changing the run's fingerprint, so ``aitrader paper`` and
    ``aitrader run`` resume each other's ledgers."""
    fingerprint = run_fingerprint(plan.feeds, plan.targets, plan.broker, cfg.risk, plan.run)
    guard = GuardConfig(stall_after=stall_after_of(plan.feeds))
    return paper_runner(
        feeds or plan.feeds, plan.targets, book, plan.broker, cfg.risk, plan.run, guard, fingerprint
    )


def _window(
    frame: pd.DataFrame, start: str | None, end: str | None
) -> tuple[pd.DataFrame, int | None]:
    """The candles up to ``end`` and the position of ``start`` (run.start / run.end)."""
    from aitrader.cli.strategy import parse_date, start_position

    if end is not None:
        frame = frame.loc[: parse_date(end, "run.end")]
    return frame, None if start is None else start_position(frame.index, start, "run.start")


@dataclass(frozen=True)
class LiveBars:
    """Where live bars come from: the exchange, the market, and websocket or REST."""

    exchange: str
    symbols: tuple[str, ...]
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
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"--symbol given twice: {', '.join(self.symbols)}")

    def describe(self) -> dict[str, object]:
        return {
            **{"exchange": self.exchange, "symbols": list(self.symbols)},
            **{"timeframe": self.timeframe, "api_url": self.api_url},
        }

    @property
    def label(self) -> str:
        return ", ".join(self.symbols)


def _start(
    client: Any, bars: LiveBars, start: pd.Timestamp | None, warmup: int
) -> tuple[pd.Timestamp, dict[str, pd.DataFrame]]:
    """Where the run starts (the last bar processed, or the latest bar closed on every market)
    and each symbol's history up to it for the strategy's warm-up."""
    from aitrader.venues.ccxt.client import history, latest_closed_bar
    from aitrader.venues.ccxt.startup import retrying

    retrying(client.load_markets)
    missing = [s for s in bars.symbols if s not in client.markets]
    if missing:
        raise ConfigError(f"--symbol {', '.join(missing)}: {client.id} has no such market")
    if start is None:
        tf = bars.timeframe
        start = min(retrying(partial(latest_closed_bar, client, s, tf)) for s in bars.symbols)
    return start, {
        s: retrying(partial(history, client, s, bars.timeframe, start, warmup))
        for s in bars.symbols
    }


def _feeds(cfg: Settings, client: Any, bars: LiveBars, start: pd.Timestamp) -> list[BarFeed]:
    """Each symbol's closed bars after ``start``: websocket klines (one ccxt.pro client; REST
    back-fill and fallback), or REST polling. Call inside the event loop that consumes them."""
    from aitrader.venues.ccxt.client import exchange_client, server_clock
    from aitrader.venues.ccxt.feeds import (
        PollingConfig,
        PollingFeed,
        WebsocketConfig,
        WebsocketFeed,
    )

    polling = PollingConfig(interval=bars.poll)
    if bars.feed == "rest":
        clock = server_clock(client)
        return [PollingFeed(client, s, bars.timeframe, start, polling, clock) for s in bars.symbols]
    stream = exchange_client(
        bars.exchange, cfg, bars.api_url, keys=False, pro=True, ws_url=bars.ws_url
    )
    config = WebsocketConfig(polling=polling)
    return [WebsocketFeed(stream, s, bars.timeframe, start, config) for s in bars.symbols]


@dataclass(frozen=True)
class LiveSession:
    """A run on an exchange's live bars, ready to start: the client, the bars, where the run
    starts (the last bar processed, or the latest closed one) and how its runner is built."""

    client: Any
    bars: LiveBars
    start: pd.Timestamp
    build: Callable[[list[BarFeed]], Runner]


async def drive(
    cfg: Settings, session: LiveSession, max_bars: int | None, stop: StopSignal | None = None
) -> tuple[Runner, RunSummary]:
    """Build the runner on live feeds and run it until ``max_bars`` or ``stop`` (a bot's)."""
    feeds = _feeds(cfg, session.client, session.bars, session.start)
    try:
        runner = session.build(feeds if stop is None else stop.feeds(feeds))
        return runner, await (runner.run(max_bars) if stop is None else stop.run(runner, max_bars))
    finally:
        close = getattr(feeds[0], "close", None)  # the feeds share one client
        if close is not None:
            await close()


def _drive(cfg: Settings, session: LiveSession, max_bars: int | None) -> tuple[Runner, RunSummary]:
    """:func:`drive` until ``max_bars`` (or Ctrl-C: the ledger is consistent after every bar,
    so the same command resumes)."""
    try:
        return asyncio.run(drive(cfg, session, max_bars))
    except KeyboardInterrupt:
        err_console.print(
            "stopped (Ctrl-C): the ledger holds every completed bar; run the same command to "
            "resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None


def paper_live_session(
    cfg: Settings, bars: LiveBars, strategy: StrategyChoice, book: Ledger
) -> LiveSession:
    """Paper trading on an exchange's live bars (its public market data, the simulated
    broker) on ``book``: resumed after its last bar when it holds this run."""
    from aitrader.venues.ccxt.client import exchange_client

    client = exchange_client(bars.exchange, cfg, bars.api_url, keys=False)
    run = bars.describe() | strategy.describe()
    config = BrokerConfig.from_costs(cfg.costs)
    symbols = list(bars.symbols)
    fingerprint = live_fingerprint(symbols, cfg.risk, run | {"broker": repr(config)})
    resume = resume_point(book, fingerprint, run)
    start, candles = _start(client, bars, resume, strategy.history())
    targets = strategy.feed(cfg, symbols, bars.timeframe, candles)

    def build(feeds: list[BarFeed]) -> Runner:
        return paper_runner(feeds, targets, book, config, cfg.risk, run, None, fingerprint)

    return LiveSession(client, bars, start, build)


def live_session(
    cfg: Settings, bars: LiveBars, strategy: StrategyChoice, capital: float | None, book: Ledger
) -> LiveSession:
    """Live trading (real orders through ccxt, the API keys of the secrets) on ``book``: a
    resumed run reconciles with the exchange first."""
    from aitrader.venues.ccxt.client import exchange_client
    from aitrader.venues.ccxt.venue import LiveSetup, live_runner

    client = exchange_client(bars.exchange, cfg, bars.api_url)
    symbols = list(bars.symbols)
    run = bars.describe() | strategy.describe() | {"capital": capital}
    resume = resume_point(book, live_fingerprint(symbols, cfg.risk, run), run)
    start, candles = _start(client, bars, resume, strategy.history())
    targets = strategy.feed(cfg, symbols, bars.timeframe, candles)

    def build(feeds: list[BarFeed]) -> Runner:
        setup = LiveSetup(cfg.risk, run, start=start, capital=capital)
        return live_runner(client, symbols, targets, feeds, book, setup)

    return LiveSession(client, bars, start, build)


def _paper_live(
    cfg: Settings,
    bars: LiveBars,
    ledger: Path | None,
    strategy: StrategyChoice,
    max_bars: int | None,
    as_json: bool,
) -> None:
    """Paper trading on an exchange's live bars: its market data, the simulated broker."""
    from aitrader.venues.ccxt.startup import venue_errors

    path = ledger or _default_ledger()
    with (
        venue_errors(bars.exchange, bars.api_url),
        run_ledger(path, secret_values(cfg.secrets)) as book,
    ):
        session = paper_live_session(cfg, bars, strategy, book)
        _, summary = _drive(cfg, session, max_bars)
    if as_json:
        _emit(summary, path, bars.label, {})
        return
    _report(summary, path, bars.label, "Paper run on live bars (simulated fills)")


def has_keys(cfg: Settings, exchange: str) -> bool:
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
    exchange: str | None = LiveExchangeOption,
    symbols: list[str] | None = LiveSymbolOption,
    timeframe: str | None = typer.Option(None, "--timeframe", help="Bar timeframe [default: 1m]."),
    confirm_live: bool = ConfirmLiveOption,
    ledger: Path | None = LiveLedgerOption,
    strategy_spec: str | None = StrategyOption,
    params: list[str] | None = ParamOption,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    stop_loss: float | None = StopOption,
    take_profit: float | None = TargetOption,
    max_bars: int | None = MaxBarsOption,
    capital: float | None = CapitalOption,
    bars_feed: str = FeedOption,
    poll: float = PollOption,
    api_url: str | None = ApiUrlOption,
    ws_url: str | None = WsUrlOption,
    config: Path | None = RunConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Live trading with real orders: the paper runtime's decision path, orders through ccxt.

    Needs API keys (AITRADER__SECRETS__EXCHANGES__<NAME>__API_KEY / __SECRET or the secrets
    file) and --confirm-live. Every order is written to the ledger before it is sent; run the
    same command on the same ledger to resume: the run reconciles with the exchange first
    (adopts fills made while down, cancels stale orders) and refuses to trade on a mismatch.
    Steer a running run with `aitrader control pause|resume|kill --ledger FILE`.

    Example: aitrader live --exchange binance --symbol BTC/USDT --confirm-live
    """
    cfg = run_settings(ctx, config)
    given = cfg.run
    exchange = exchange or given.exchange or ""
    symbols, timeframe = symbols or given.symbols, timeframe or given.timeframe or "1m"
    capital = capital if capital is not None else given.capital
    if not exchange or not symbols:
        raise ConfigError("live needs --exchange and --symbol (or run.exchange / run.symbols)")
    name = exchange.strip().lower()
    _check_live(cfg, name, f"{', '.join(symbols)} ({timeframe})", confirm_live)
    strategy = choice(cfg, strategy_spec, params, model, (stop_loss, take_profit), trust_bundle)
    bars = LiveBars(name, tuple(symbols), timeframe, bars_feed, poll, api_url, ws_url)
    path = ledger or _live_ledger(bars)
    summary, changes = _trade_live(cfg, bars, strategy, (capital, max_bars), path)
    _show_live(summary, path, bars.label, changes, as_json)


def _show_live(
    summary: RunSummary, path: Path, label: str, changes: list[str], as_json: bool
) -> None:
    """A live run's outcome with what its reconciliation changed, as JSON or a table."""
    if as_json:
        _emit(summary, path, label, {"reconciled": changes})
        return
    for line in changes:
        console.print(f"reconciled: {line}", highlight=False, soft_wrap=True)
    _report(summary, path, label, "Live run (exchange fills)")


def _check_live(cfg: Settings, name: str, markets: str, confirm_live: bool) -> None:
    """Refuse a live run without API keys for ``name`` or without ``--confirm-live``."""
    if not has_keys(cfg, name):
        variable = f"AITRADER__SECRETS__EXCHANGES__{name.upper()}__API_KEY (and __SECRET)"
        _refuse(f"no API keys for {name}: set {variable} or a secrets file (mode 0600)")
    if not confirm_live:
        _refuse(
            f"live trading of {markets} on {name} places real orders with real money; add "
            "--confirm-live to confirm"
        )


def _live_ledger(bars: LiveBars) -> Path:
    """The default ledger of a live run: named after its exchange, markets and timeframe."""
    markets = "-".join(path_segment(s.replace("/", ""), "--symbol") for s in bars.symbols)
    timeframe = path_segment(bars.timeframe, "--timeframe")
    return Path(f"live-{bars.exchange}-{markets}-{timeframe}.db")


def _trade_live(
    cfg: Settings,
    bars: LiveBars,
    strategy: StrategyChoice,
    limits: tuple[float | None, int | None],
    path: Path,
) -> tuple[RunSummary, list[str]]:
    """The live run on the ledger at ``path`` with ``limits`` (capital, max bars): its summary
    and what the reconciliation at its start changed."""
    from aitrader.venues.ccxt.startup import venue_errors

    capital, max_bars = limits
    with (
        venue_errors(bars.exchange, bars.api_url),
        run_ledger(path, secret_values(cfg.secrets)) as book,
    ):
        session = live_session(cfg, bars, strategy, capital, book)
        runner, summary = _drive(cfg, session, max_bars)
        report = getattr(runner.engine.broker, "reconciled", None)
    return summary, report.lines() if report is not None else []
