"""ccxt clients: built from the settings (keys from the environment or the secrets file),
pointed at other Binance-compatible endpoints (a testnet, the local exchange emulator), the
exchange's clock, and the closed candles a run starts from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import ccxt
import ccxt.pro
import pandas as pd

from aitrader.config import Settings
from aitrader.errors import ConfigError


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


def raw_client(name: str, config: Mapping[str, Any], pro: bool = False) -> Any:
    """A ccxt (``pro``: ccxt.pro, asyncio with websockets) client of exchange ``name`` built from
    ccxt's own ``config`` (keys, timeout, rate limiting)."""
    factory = getattr(ccxt.pro if pro else ccxt, name, None)
    if name not in ccxt.exchanges or factory is None:
        kind = "ccxt exchange id with websocket support" if pro else "ccxt exchange id"
        raise ConfigError(f"--exchange {name!r} is not a {kind} (e.g. binance)")
    return factory(dict(config))


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
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
    credentials = settings.secrets.exchanges.get(name) if keys else None
    if credentials is not None and credentials.api_key is not None:
        config["apiKey"] = credentials.api_key.get_secret_value()
    if credentials is not None and credentials.secret is not None:
        config["secret"] = credentials.secret.get_secret_value()
    exchange = raw_client(name, config, pro)
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
