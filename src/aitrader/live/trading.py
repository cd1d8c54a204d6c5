"""Live runs on an exchange: the ccxt client, the clock, the feeds, the broker and the runner.

:func:`live_runner` builds the same :class:`~aitrader.live.runner.Runner` as
:func:`~aitrader.live.runner.paper_runner`, with an :class:`~aitrader.live.exchange.ExchangeBroker`
instead of the simulated one. A fresh ledger starts a new run (a new run id, the account's
balances as its opening balances); a ledger holding a checkpoint of the same run resumes it: the
broker reloads its state from the ledger and reconciles with the exchange before the first bar
(it refuses to trade when they cannot be squared), and the feeds back-fill every bar closed
since the last one processed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ccxt
import ccxt.pro
import pandas as pd

from aitrader.config import Settings
from aitrader.engine.loop import Engine
from aitrader.engine.managed_policy import ManagedPolicy, TargetFeed
from aitrader.errors import ConfigError
from aitrader.live.calls import ExchangeCalls
from aitrader.live.exchange import ExchangeBroker
from aitrader.live.feeds import BarFeed
from aitrader.live.fingerprint import live_fingerprint, refuse_other_run
from aitrader.live.guard import CircuitBreaker
from aitrader.live.ledger import Ledger, LedgerRiskStateStore
from aitrader.live.runner import PROGRESS, GuardConfig, Runner
from aitrader.risk.config import RiskConfig
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import RiskState

log = logging.getLogger(__name__)

LIVE_STATE = "live"
"""Ledger state document naming the live run (its run id, the exchange, the symbols)."""

FeedFactory = Callable[[str, pd.Timestamp], BarFeed]
"""Builds one symbol's feed that yields the closed bars after the given time."""


def binance_rest_urls(base: str) -> dict[str, str]:
    """``exchange.urls['api']`` entries pointing ccxt's binance spot REST API at ``base``
    (a Binance-compatible endpoint: a testnet mirror or the local exchange emulator)."""
    base = base.rstrip("/")
    return {
        "public": f"{base}/api/v3",
        "private": f"{base}/api/v3",
        "v1": f"{base}/api/v1",
        "sapi": f"{base}/sapi/v1",
    }


def exchange_client(
    name: str,
    settings: Settings,
    api_url: str | None = None,
    timeout_ms: int = 10_000,
    keys: bool = True,
    pro: bool = False,
    ws_url: str | None = None,
) -> Any:
    """A ccxt client for ``name`` (spot markets) with the keys from the environment or the
    secrets file (``keys=False``: public data only), rate limiting on; ``pro``: the asyncio
    ``ccxt.pro`` client with websocket streams (create it inside its event loop). ``api_url``
    / ``ws_url`` point binance at other endpoints (a testnet or the local emulator)."""
    name = name.strip().lower()
    factory = getattr(ccxt.pro if pro else ccxt, name, None)
    if name not in ccxt.exchanges or factory is None:
        kind = "ccxt exchange id with websocket support" if pro else "ccxt exchange id"
        raise ConfigError(f"--exchange {name!r} is not a {kind} (e.g. binance)")
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
    credentials = settings.secrets.exchanges.get(name) if keys else None
    if credentials is not None and credentials.api_key is not None:
        config["apiKey"] = credentials.api_key.get_secret_value()
    if credentials is not None and credentials.secret is not None:
        config["secret"] = credentials.secret.get_secret_value()
    exchange = factory(config)
    exchange.options["defaultType"] = "spot"
    if (api_url is not None or ws_url is not None) and name != "binance":
        raise ConfigError(f"--api-url / --ws-url are supported for binance only, not {name}")
    ws = None if ws_url is None else {"spot": ws_url, "margin": ws_url}
    return point_binance(exchange, api_url, ws)


def point_binance(exchange: Any, api_url: str | None, ws: Mapping[str, Any] | None = None) -> Any:
    """Point a ccxt (or ccxt.pro) binance client's spot REST API at ``api_url`` and its
    websocket endpoints at ``ws`` (entries of ``urls['api']['ws']``), spot markets only."""
    if api_url is not None:
        exchange.urls["api"] = {**exchange.urls["api"], **binance_rest_urls(api_url)}
        exchange.options["fetchMarkets"] = ["spot"]
        exchange.options["fetchMargins"] = False  # spot only: no /sapi/v1/margin/allPairs
    if ws is not None:
        merged = {**exchange.urls["api"].get("ws", {}), **ws}
        exchange.urls["api"] = {**exchange.urls["api"], "ws": merged}
    return exchange


def server_clock(exchange: Any) -> Callable[[], int]:
    """The exchange's clock in ms (``fetch_time``), so a bar counts as closed by the venue's
    time, not this machine's; on a network error, the last reading plus the time since. An
    exchange without ``fetchTime`` falls back to this machine's clock."""
    last: dict[str, float] = {}
    if not exchange.has.get("fetchTime"):
        return exchange.milliseconds

    def now_ms() -> int:
        try:
            value = int(exchange.fetch_time())
        except ccxt.NetworkError:
            if not last:
                raise
            return int(last["server"] + (time.monotonic() - last["local"]) * 1000)
        last.update(server=value, local=time.monotonic())
        return value

    return now_ms


def latest_closed_bar(exchange: Any, symbol: str, timeframe: str) -> pd.Timestamp:
    """Open time of the exchange's latest closed bar of ``symbol``."""
    step = int(exchange.parse_timeframe(timeframe) * 1000)
    now = server_clock(exchange)()
    rows = exchange.fetch_ohlcv(symbol, timeframe, None, 5)
    closed = [int(r[0]) for r in rows if int(r[0]) + step <= now]
    if not closed:
        raise ConfigError(f"{exchange.id} returned no closed {timeframe} bar for {symbol}")
    return pd.Timestamp(max(closed), unit="ms", tz="UTC")


def history(
    exchange: Any, symbol: str, timeframe: str, until: pd.Timestamp, bars: int
) -> pd.DataFrame:
    """The ``bars`` closed candles up to and including ``until`` (UTC open times)."""
    step = pd.Timedelta(seconds=exchange.parse_timeframe(timeframe))
    since = int((until - step * (bars - 1)).value // 1_000_000)
    rows: list[list[Any]] = []
    while True:
        page = exchange.fetch_ohlcv(symbol, timeframe, since, min(bars, 1000))
        page = [r for r in page if int(r[0]) <= until.value // 1_000_000]
        rows += page
        if not page or len(page) < min(bars, 1000) or int(page[-1][0]) >= until.value // 10**6:
            break
        since = int(page[-1][0]) + 1
    frame = pd.DataFrame(
        [r[:6] for r in rows], columns=["time", "open", "high", "low", "close", "volume"]
    )
    frame = frame.drop_duplicates("time").astype({"time": "int64"})
    frame.index = pd.to_datetime(frame.pop("time"), unit="ms", utc=True)
    return frame.astype("float64")


def resume_point(
    ledger: Ledger, fingerprint: str, config: Mapping[str, Any] | None = None
) -> pd.Timestamp | None:
    """The last bar processed by the ledger's run when it is this run (None: a fresh ledger);
    a ledger of another run is refused, naming the settings that differ from ``config``."""
    state = ledger.load_state(PROGRESS)
    refuse_other_run(state, fingerprint, dict(config or {}))
    if state is None:
        return None
    return pd.Timestamp(state["last_bar"])


def live_runner(
    exchange: Any,
    symbols: Sequence[str],
    targets: TargetFeed,
    feeds: Sequence[BarFeed],
    ledger: Ledger,
    risk: RiskConfig | None = None,
    config: Mapping[str, Any] | None = None,
    breaker: CircuitBreaker | None = None,
    calls: ExchangeCalls | None = None,
    guard: GuardConfig | None = None,
    start: pd.Timestamp | None = None,
    capital: float | None = None,
) -> Runner:
    """A Runner trading ``symbols`` on ``exchange`` (see the module docstring).

    ``feeds`` must start after :func:`resume_point` (or the latest closed bar on a fresh run,
    ``start``: then the run's first checkpoint is written before its first bar, so even a crash
    during that bar resumes and reconciles); ``targets`` must be seeded with the history up to
    that bar.
    """
    risk = risk or RiskConfig()
    fingerprint = live_fingerprint(symbols, risk, config)
    state = ledger.load_state(PROGRESS)
    resuming = state is not None and state.get("fingerprint") == fingerprint
    if resuming and state is not None and "risk" in state:
        LedgerRiskStateStore(ledger).save(RiskState.from_json(state["risk"]))
    info = ledger.load_state(LIVE_STATE) or {}
    run_id = str(info.get("run_id") or uuid.uuid4().hex[:12])
    if not info:
        ledger.save_state(
            LIVE_STATE, {"run_id": run_id, "exchange": exchange.id, "symbols": list(symbols)}
        )
    calls = calls or ExchangeCalls(exchange, breaker)
    calls.ledger = ledger  # retries and bans become ledger events
    calls("load_markets")
    broker = ExchangeBroker(exchange, symbols, ledger, run_id, calls=calls, capital=capital)
    if state is None:
        broker.start()
    manager = RiskManager(risk, store=LedgerRiskStateStore(ledger))
    policy = ManagedPolicy(symbols, targets, manager, broker)
    engine = Engine(policy, broker)
    runner = Runner(engine, feeds, ledger, fingerprint, config, guard)
    if state is None and start is not None:
        runner.begin(start)
    return runner
