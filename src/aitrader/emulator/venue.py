"""The emulator's matching engine: a replay clock over real candles, balances, orders, trades.

Time is the replay clock: ``now`` is the open time of the bar in progress, whose only known
price is its open. Market orders fill at once at that price (the open of the bar after the one a
strategy decided on); limit orders that are marketable fill at once at that price (taker), the
rest rest until a later bar trades *through* the limit (low < buy limit, high > sell limit) and
then fill at the limit (maker), at most ``participation`` × the bar's volume per bar.
``advance()`` completes the bar in progress and moves the clock one bar on.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pandas as pd

from aitrader.data.timeframes import timeframe_delta


class VenueError(Exception):
    """A request the venue refuses, with Binance's error code, message and HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


@dataclass(frozen=True)
class MarketSpec:
    """One spot market and the candles it replays (filters as Binance's exchangeInfo has them)."""

    symbol: str  # exchange id, e.g. BTCUSDT
    base: str
    quote: str
    candles: pd.DataFrame
    tick_size: str = "0.01"
    step_size: str = "0.00001"
    min_qty: str = "0.00001"
    max_qty: str = "9000"
    min_notional: str = "5"


@dataclass
class VenueOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT / LIMIT_MAKER / STOP_LOSS
    time_in_force: str
    price: float  # 0 for market orders
    qty: float
    time: int  # ms, replay clock
    reserved: float  # quote (buy) or base (sell) locked for the rest of the order
    executed: float = 0.0
    quote_qty: float = 0.0
    status: str = "NEW"
    update_time: int = 0
    fill_ids: list[int] = field(default_factory=list)
    pending_market: bool = False  # a delayed market fill waits for the next bar's open
    stop_price: float = 0.0  # STOP_LOSS: a market order once the price trades through it

    @property
    def remaining(self) -> float:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class VenueTrade:
    trade_id: int
    order_id: int
    symbol: str
    price: float
    qty: float
    commission: float
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(frozen=True)
class OrderRequest:
    """A validated new order (quantities already checked against the filters)."""

    symbol: str
    side: str
    type: str
    qty: float
    price: float = 0.0
    time_in_force: str = "GTC"
    client_order_id: str = ""
    stop_price: float = 0.0  # STOP_LOSS only


@dataclass(frozen=True)
class OrderUpdate:
    """One order state change, reported to the venue's listeners as it happens (under the lock).

    ``execution`` is Binance's execution type: NEW, TRADE (``trade`` is the execution), CANCELED
    (``cancel_client_id`` names the cancel request) or EXPIRED.
    """

    order: VenueOrder
    execution: str
    trade: VenueTrade | None = None
    cancel_client_id: str | None = None


OrderListener = Callable[[OrderUpdate], None]

MARKET_RESERVE = 0.05
"""Extra quote locked for a delayed market buy, against the next open being higher."""


class Venue:
    """All mutable exchange state, behind one lock (HTTP handlers and the test thread share it)."""

    def __init__(
        self,
        markets: list[MarketSpec],
        timeframe: str,
        balances: dict[str, float],
        start: pd.Timestamp,
        fee_rate: float = 0.001,
        participation: float = 1.0,
    ) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.timeframe = timeframe
        self.step = timeframe_delta(timeframe)
        self.now = pd.Timestamp(start)
        self.fee_rate = fee_rate
        self.participation = participation
        self.free = {asset: 0.0 for m in markets for asset in (m.base, m.quote)}
        self.free.update(balances)
        self.locked = dict.fromkeys(self.free, 0.0)
        self.orders: dict[int, VenueOrder] = {}
        self.trades: list[VenueTrade] = []
        self.lock = threading.RLock()
        self.delayed_market_fills = 0
        self.listeners: list[OrderListener] = []  # called under the lock on every order change
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._client_ids = itertools.count(1)

    @property
    def now_ms(self) -> int:
        return int(self.now.value // 1_000_000)

    def market(self, symbol: str) -> MarketSpec:
        found = self.markets.get(symbol)
        if found is None:
            raise VenueError(-1121, "Invalid symbol.")
        return found

    def price(self, symbol: str) -> float:
        """The current price: the open of the bar in progress, else the last close."""
        candles = self.market(symbol).candles
        if self.now in candles.index:
            return float(candles.at[self.now, "open"])
        before = candles[candles.index < self.now]
        if before.empty:
            raise VenueError(-1121, f"no price for {symbol} before {self.now.isoformat()}")
        return float(before["close"].iloc[-1])

    def bar(self, symbol: str) -> pd.Series | None:
        """The bar in progress (full values: only for matching when it completes)."""
        candles = self.market(symbol).candles
        return candles.loc[self.now] if self.now in candles.index else None

    # -- clock ----------------------------------------------------------------------------

    def advance(self, bars: int = 1) -> pd.Timestamp:
        """Complete the bar in progress (resting orders match against it), step the clock."""
        with self.lock:
            for _ in range(bars):
                for symbol in self.markets:
                    self._match_bar(symbol)
                end = max(m.candles.index[-1] for m in self.markets.values())
                if self.now + self.step > end:
                    raise VenueError(-1000, "the replay has no more bars")
                self.now = self.now + self.step
                for order in [o for o in self.orders.values() if o.pending_market]:
                    self._fill_market(order)
            return self.now

    def _match_bar(self, symbol: str) -> None:
        bar = self.bar(symbol)
        if bar is None:
            return
        budget = float(bar["volume"]) * self.participation
        close_ms = self.now_ms + int(self.step.value // 1_000_000)
        for order in sorted(self.orders.values(), key=lambda o: o.order_id):
            if order.symbol != symbol or not order.is_open or order.pending_market:
                continue
            if order.type == "STOP_LOSS":
                self._trigger_stop(order, bar, close_ms)
                continue
            through = (order.side == "BUY" and bar["low"] < order.price) or (
                order.side == "SELL" and bar["high"] > order.price
            )
            if through and budget > 0:
                qty = min(order.remaining, self.floor_qty(symbol, budget))
                if qty > 0:
                    budget -= qty
                    self._execute(order, qty, order.price, maker=True, time=close_ms - 1)

    def _trigger_stop(self, order: VenueOrder, bar: pd.Series, close_ms: int) -> None:
        """A sell STOP_LOSS becomes a market order when the bar trades at or below its stop: it
        fills at the stop, or at the open when the bar gapped below it."""
        if bar["low"] <= order.stop_price:
            price = min(order.stop_price, float(bar["open"]))
            self._execute(order, order.remaining, price, maker=False, time=close_ms - 1)

    # -- orders ---------------------------------------------------------------------------

    def place(self, request: OrderRequest) -> VenueOrder:
        with self.lock:
            client_id = request.client_order_id or f"emu{next(self._client_ids):012d}"
            if any(o.client_order_id == client_id and o.is_open for o in self.orders.values()):
                raise VenueError(-2010, "Duplicate order sent.")
            price_now = self.price(request.symbol)
            if request.type == "STOP_LOSS" and request.stop_price >= price_now:
                raise VenueError(-2010, "Stop price would trigger immediately.")
            marketable = request.type == "MARKET" or (
                request.type != "STOP_LOSS"
                and (
                    (request.side == "BUY" and request.price >= price_now)
                    or (request.side == "SELL" and request.price <= price_now)
                )
            )
            if request.type == "LIMIT_MAKER" and marketable:
                raise VenueError(-2010, "Order would immediately match and take.")
            order = VenueOrder(
                order_id=next(self._order_ids),
                client_order_id=client_id,
                symbol=request.symbol,
                side=request.side,
                type=request.type,
                time_in_force=request.time_in_force,
                price=request.price,
                qty=request.qty,
                time=self.now_ms,
                reserved=0.0,
                update_time=self.now_ms,
                stop_price=request.stop_price,
            )
            self._reserve(order, price_now)
            self.orders[order.order_id] = order
            self._report(OrderUpdate(order, "NEW"))
            self._after_place(order, marketable, price_now)
            return order

    def _after_place(self, order: VenueOrder, marketable: bool, price_now: float) -> None:
        if order.type == "MARKET" and self.delayed_market_fills > 0:
            self.delayed_market_fills -= 1
            order.pending_market = True
        elif order.type == "MARKET":
            self._fill_market(order)
        elif marketable:
            self._execute(order, order.qty, price_now, maker=False, time=self.now_ms)
        elif order.time_in_force in ("IOC", "FOK"):
            self._finish(order, "EXPIRED")

    def _reserve(self, order: VenueOrder, price_now: float) -> None:
        market = self.markets[order.symbol]
        if order.side == "SELL":
            asset, amount = market.base, order.qty
        else:
            asset = market.quote
            if order.type == "MARKET":
                reserve = MARKET_RESERVE if self.delayed_market_fills > 0 else 0.0
                amount = order.qty * price_now * (1 + reserve)
            else:
                amount = order.qty * order.price
        if self.free.get(asset, 0.0) < amount - 1e-12:
            raise VenueError(-2010, "Account has insufficient balance for requested action.")
        self.free[asset] -= amount
        self.locked[asset] += amount
        order.reserved = amount

    def _fill_market(self, order: VenueOrder) -> None:
        price = self.price(order.symbol)
        order.pending_market = False
        if order.side == "BUY":
            quote = self.markets[order.symbol].quote
            if self.free[quote] + order.reserved < order.remaining * price:
                self._finish(order, "EXPIRED")
                return
        self._execute(order, order.remaining, price, maker=False, time=self.now_ms)

    def _execute(self, order: VenueOrder, qty: float, price: float, maker: bool, time: int) -> None:
        market = self.markets[order.symbol]
        if order.side == "BUY":
            release = order.reserved * qty / order.remaining
            self.locked[market.quote] -= release
            self.free[market.quote] += release - qty * price
            commission, asset = qty * self.fee_rate, market.base
            self.free[market.base] += qty - commission
        else:
            release = qty
            self.locked[market.base] -= qty
            commission, asset = qty * price * self.fee_rate, market.quote
            self.free[market.quote] += qty * price - commission
        order.reserved -= release
        trade = VenueTrade(
            next(self._trade_ids), order.order_id, order.symbol, price, qty, commission, asset,
            time, order.side == "BUY", maker,
        )  # fmt: skip
        self.trades.append(trade)
        order.fill_ids.append(trade.trade_id)
        order.executed += qty
        order.quote_qty += qty * price
        order.update_time = time
        order.status = "FILLED" if order.remaining <= 1e-12 else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        self._report(OrderUpdate(order, "TRADE", trade))

    def _finish(self, order: VenueOrder, status: str, cancel_client_id: str | None = None) -> None:
        order.status = status
        order.update_time = self.now_ms
        self._release(order)
        self._report(OrderUpdate(order, status, cancel_client_id=cancel_client_id))

    def _report(self, update: OrderUpdate) -> None:
        for listener in list(self.listeners):
            listener(update)

    def _release(self, order: VenueOrder) -> None:
        market = self.markets[order.symbol]
        asset = market.quote if order.side == "BUY" else market.base
        self.locked[asset] -= order.reserved
        self.free[asset] += order.reserved
        order.reserved = 0.0

    def find(self, symbol: str, order_id: str | None, client_order_id: str | None) -> VenueOrder:
        """An order by id or client id (the latest with that client id); -2013 if unknown."""
        with self.lock:
            self.market(symbol)
            if order_id is None and client_order_id is None:
                raise VenueError(
                    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                    "empty/null!",
                )  # fmt: skip
            for order in sorted(self.orders.values(), key=lambda o: -o.order_id):
                if order.symbol != symbol:
                    continue
                if order_id is not None and str(order.order_id) != order_id:
                    continue
                if client_order_id is not None and order.client_order_id != client_order_id:
                    continue
                return order
            raise VenueError(-2013, "Order does not exist.")

    def cancel(
        self,
        symbol: str,
        order_id: str | None,
        client_order_id: str | None,
        cancel_client_id: str | None = None,
    ) -> VenueOrder:
        """Cancel an open order; ``cancel_client_id`` is the cancel request's own client id."""
        with self.lock:
            try:
                order = self.find(symbol, order_id, client_order_id)
            except VenueError as exc:
                if exc.code == -2013:
                    raise VenueError(-2011, "Unknown order sent.") from None
                raise
            if not order.is_open:
                raise VenueError(-2011, "Unknown order sent.")
            order.pending_market = False
            self._finish(order, "CANCELED", cancel_client_id or f"cancel{order.order_id}")
            return order

    def open_orders(self, symbol: str | None) -> list[VenueOrder]:
        with self.lock:
            if symbol is not None:
                self.market(symbol)
            return [
                o
                for o in sorted(self.orders.values(), key=lambda o: o.order_id)
                if o.is_open and (symbol is None or o.symbol == symbol)
            ]

    def validate(self, request: OrderRequest, raw_qty: str, raw_price: str | None) -> None:
        """Binance's LOT_SIZE, PRICE_FILTER and NOTIONAL filters (-1013)."""
        market = self.market(request.symbol)
        if not _on_grid(raw_qty, market.step_size, market.min_qty, market.max_qty):
            raise VenueError(-1013, "Filter failure: LOT_SIZE")
        if raw_price is not None and not _on_grid(raw_price, market.tick_size, "0", "1000000"):
            raise VenueError(-1013, "Filter failure: PRICE_FILTER")
        price = {"MARKET": self.price(request.symbol), "STOP_LOSS": request.stop_price}.get(
            request.type, request.price
        )
        if request.qty * price < float(market.min_notional):
            raise VenueError(-1013, "Filter failure: NOTIONAL")

    def floor_qty(self, symbol: str, qty: float) -> float:
        step = Decimal(self.markets[symbol].step_size)
        return float((Decimal(repr(qty)) // step) * step)


def _on_grid(raw: str, step: str, low: str, high: str) -> bool:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return False
    if not Decimal(low) <= value <= Decimal(high) or value <= 0:
        return False
    return (value / Decimal(step)) % 1 == 0
