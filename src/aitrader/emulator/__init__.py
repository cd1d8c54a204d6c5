"""A local exchange that speaks Binance spot's REST API, kline websocket streams and user-data
stream (WebSocket API subscription and listenKey) on 127.0.0.1, verifies signed requests, matches
orders against replayed real candles and injects faults on demand.

>>> with ExchangeEmulator() as emu:           # doctest: +SKIP
...     client = emu.client()                 # a real ccxt.binance pointed at the emulator
...     client.create_order("BTC/USDT", "market", "buy", 0.01)
...     emu.advance()                         # the next bar (pushed to kline subscribers)
...     pro = emu.pro_client()                # a real ccxt.pro.binance (REST + websockets,
...                                           # watch_orders / watch_my_trades / watch_balance)
...     emu.drop_websockets()                 # faults: cut connections, refuse handshakes
"""

from aitrader.emulator.server import (
    EmulatorConfig,
    ExchangeEmulator,
    Fault,
    order_rejected,
    rate_limited,
    slow,
    unavailable,
)
from aitrader.emulator.venue import MarketSpec, Venue, VenueError

__all__ = [
    "EmulatorConfig",
    "ExchangeEmulator",
    "Fault",
    "MarketSpec",
    "Venue",
    "VenueError",
    "order_rejected",
    "rate_limited",
    "slow",
    "unavailable",
]
