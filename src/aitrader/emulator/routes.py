"""The Binance spot REST endpoints the emulator serves: parameters in, JSON-ready values out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aitrader.data.timeframes import timeframe_delta
from aitrader.emulator import wire
from aitrader.emulator.venue import OrderRequest, Venue, VenueError

Params = Mapping[str, str]


@dataclass(frozen=True)
class Route:
    signed: bool
    handle: Callable[[Venue, Params], Any]


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise VenueError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _int(params: Params, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise VenueError(-1100, f"Illegal characters found in parameter '{name}'.") from None


def _klines(venue: Venue, params: Params) -> Any:
    symbol = _required(params, "symbol")
    venue.market(symbol)
    interval = _required(params, "interval")
    if interval != venue.timeframe:
        try:
            timeframe_delta(interval)
        except Exception:
            raise VenueError(-1120, "Invalid interval.") from None
        raise VenueError(-1120, f"Invalid interval: this replay serves {venue.timeframe} only.")
    limit = _int(params, "limit", 500) or 500
    if not 1 <= limit <= wire.MAX_KLINES:
        raise VenueError(-1130, "Invalid data sent for a parameter.")
    start, end = _int(params, "startTime"), _int(params, "endTime")
    return wire.klines(venue, symbol, start, end, limit)


def _ticker_price(venue: Venue, params: Params) -> Any:
    symbol = params.get("symbol")
    if symbol is not None:
        return {"symbol": symbol, "price": wire.num(venue.price(symbol))}
    return [{"symbol": s, "price": wire.num(venue.price(s))} for s in venue.markets]


def _book_ticker(venue: Venue, params: Params) -> Any:
    def one(symbol: str) -> dict[str, str]:
        price = wire.num(venue.price(symbol))
        return {"symbol": symbol, "bidPrice": price, "bidQty": "1.00000000",
                "askPrice": price, "askQty": "1.00000000"}  # fmt: skip

    symbol = params.get("symbol")
    return one(symbol) if symbol is not None else [one(s) for s in venue.markets]


def _ticker_24h(venue: Venue, params: Params) -> Any:
    symbol = params.get("symbol")
    if symbol is not None:
        return wire.ticker_24h(venue, symbol)
    return [wire.ticker_24h(venue, s) for s in venue.markets]


def _decimal(params: Params, name: str) -> tuple[str, float]:
    raw = _required(params, name)
    try:
        return raw, float(Decimal(raw))
    except InvalidOperation:
        raise VenueError(-1100, f"Illegal characters found in parameter '{name}'.") from None


def order_request(venue: Venue, params: Params) -> OrderRequest:
    """Parse and check a new order the way Binance does (-1102, -1116, -1013 ...)."""
    symbol = _required(params, "symbol")
    venue.market(symbol)
    side = _required(params, "side").upper()
    if side not in ("BUY", "SELL"):
        raise VenueError(-1100, "Illegal characters found in parameter 'side'.")
    kind = _required(params, "type").upper()
    if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS"):
        raise VenueError(-1116, "Invalid orderType.")
    if kind == "STOP_LOSS" and side != "SELL":
        raise VenueError(-1116, "Invalid orderType.")  # this venue has sell stops only
    raw_price: str | None = None
    price = stop = 0.0
    if kind == "STOP_LOSS":
        raw_price, stop = _decimal(params, "stopPrice")  # checked against the tick grid
    elif kind != "MARKET":
        raw_price, price = _decimal(params, "price")
    tif = _required(params, "timeInForce").upper() if kind == "LIMIT" else "GTC"
    if tif not in ("GTC", "IOC", "FOK"):
        raise VenueError(-1115, "Invalid timeInForce.")
    if kind == "MARKET" and "quantity" not in params and "quoteOrderQty" in params:
        _, cost = _decimal(params, "quoteOrderQty")
        qty = venue.floor_qty(symbol, cost / venue.price(symbol))
        raw_qty = format(Decimal(repr(qty)), "f")
    else:
        raw_qty, qty = _decimal(params, "quantity")
    client_id = params.get("newClientOrderId", "")
    request = OrderRequest(symbol, side, kind, qty, price, tif, client_id, stop)
    venue.validate(request, raw_qty, raw_price)
    return request


def _new_order(venue: Venue, params: Params) -> Any:
    with venue.lock:
        placed = venue.place(order_request(venue, params))
        resp_type = params.get("newOrderRespType", "FULL").upper()
        return wire.order_ack(placed, venue, resp_type)


def _test_order(venue: Venue, params: Params) -> Any:
    order_request(venue, params)
    return {}


def _get_order(venue: Venue, params: Params) -> Any:
    with venue.lock:
        found = venue.find(
            _required(params, "symbol"), params.get("orderId"), params.get("origClientOrderId")
        )
        return wire.order(found, venue)


def _cancel_order(venue: Venue, params: Params) -> Any:
    with venue.lock:
        cancel_id = params.get("newClientOrderId") or None
        cancelled = venue.cancel(
            _required(params, "symbol"),
            params.get("orderId"),
            params.get("origClientOrderId"),
            cancel_id,
        )
        body = wire.order(cancelled, venue)
        body["origClientOrderId"] = cancelled.client_order_id
        body["clientOrderId"] = cancel_id or f"cancel{cancelled.order_id}"
        body["transactTime"] = venue.now_ms
        return body


def _open_orders(venue: Venue, params: Params) -> Any:
    with venue.lock:
        return [wire.order(o, venue) for o in venue.open_orders(params.get("symbol"))]


def _cancel_all(venue: Venue, params: Params) -> Any:
    with venue.lock:
        symbol = _required(params, "symbol")
        return [_cancel_order(venue, {"symbol": symbol, "orderId": str(o.order_id)})
                for o in venue.open_orders(symbol)]  # fmt: skip


def _my_trades(venue: Venue, params: Params) -> Any:
    symbol = _required(params, "symbol")
    venue.market(symbol)
    limit = _int(params, "limit", 500) or 500
    from_id, order_id = _int(params, "fromId"), _int(params, "orderId")
    start, end = _int(params, "startTime"), _int(params, "endTime")
    with venue.lock:
        chosen = [
            t
            for t in venue.trades
            if t.symbol == symbol
            and (from_id is None or t.trade_id >= from_id)
            and (order_id is None or t.order_id == order_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return [wire.trade(t) for t in chosen]


def _account(venue: Venue, params: Params) -> Any:
    with venue.lock:
        return wire.account(venue)


def _coins(venue: Venue, params: Params) -> Any:
    with venue.lock:
        return wire.coins(venue)


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v3/ping"): Route(False, lambda v, p: {}),
    ("GET", "/api/v3/time"): Route(False, lambda v, p: {"serverTime": v.now_ms}),
    ("GET", "/api/v3/exchangeInfo"): Route(False, lambda v, p: wire.exchange_info(v)),
    ("GET", "/api/v3/klines"): Route(False, _klines),
    ("GET", "/api/v3/uiKlines"): Route(False, _klines),
    ("GET", "/api/v3/ticker/price"): Route(False, _ticker_price),
    ("GET", "/api/v3/ticker/bookTicker"): Route(False, _book_ticker),
    ("GET", "/api/v3/ticker/24hr"): Route(False, _ticker_24h),
    ("GET", "/api/v3/account"): Route(True, _account),
    ("POST", "/api/v3/order"): Route(True, _new_order),
    ("POST", "/api/v3/order/test"): Route(True, _test_order),
    ("GET", "/api/v3/order"): Route(True, _get_order),
    ("DELETE", "/api/v3/order"): Route(True, _cancel_order),
    ("GET", "/api/v3/openOrders"): Route(True, _open_orders),
    ("DELETE", "/api/v3/openOrders"): Route(True, _cancel_all),
    ("GET", "/api/v3/myTrades"): Route(True, _my_trades),
    ("GET", "/sapi/v1/capital/config/getall"): Route(True, _coins),
}
