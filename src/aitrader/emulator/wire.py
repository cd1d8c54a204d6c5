"""Binance spot's JSON layouts (exchangeInfo, klines, orders, trades, account, user-data events)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aitrader.emulator.venue import MarketSpec, OrderUpdate, Venue, VenueOrder, VenueTrade

MAX_KLINES = 1000


def num(value: float) -> str:
    return f"{value:.8f}"


def exchange_info(venue: Venue) -> dict[str, Any]:
    limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]
    return {
        "timezone": "UTC",
        "serverTime": venue.now_ms,
        "rateLimits": limits,
        "exchangeFilters": [],
        "symbols": [_symbol(m) for m in venue.markets.values()],
    }


def _symbol(market: MarketSpec) -> dict[str, Any]:
    filters = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": num(float(market.tick_size)),
            "maxPrice": "1000000.00000000",
            "tickSize": num(float(market.tick_size)),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": num(float(market.min_qty)),
            "maxQty": num(float(market.max_qty)),
            "stepSize": num(float(market.step_size)),
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": num(float(market.min_notional)),
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]
    return {
        "symbol": market.symbol,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": filters,
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def klines(venue: Venue, symbol: str, start: int | None, end: int | None, limit: int) -> list[Any]:
    """Closed bars up to the clock, then the bar in progress as far as it is known (its open)."""
    candles = venue.market(symbol).candles
    stamps = candles.index.asi8 // 1_000_000
    mask = stamps <= venue.now_ms
    if start is not None:
        mask &= stamps >= start
    if end is not None:
        mask &= stamps <= end
    chosen = candles[mask]
    chosen = chosen.iloc[:limit] if start is not None else chosen.iloc[-limit:]
    step = int(venue.step.value // 1_000_000)
    return [_kline(ts, row, venue.now, step) for ts, row in chosen.iterrows()]


def kline(venue: Venue, symbol: str, ts: pd.Timestamp) -> list[Any] | None:
    """One bar in the REST layout as of the clock (None where the market has no bar at ``ts``)."""
    candles = venue.market(symbol).candles
    if ts not in candles.index:
        return None
    return _kline(ts, candles.loc[ts], venue.now, int(venue.step.value // 1_000_000))


def _kline(ts: pd.Timestamp, row: pd.Series, now: pd.Timestamp, step: int) -> list[Any]:
    ms = int(ts.value // 1_000_000)
    o, h, low, c, v = (float(row[k]) for k in ("open", "high", "low", "close", "volume"))
    if ts >= now:  # in progress: only the open is known
        h = low = c = o
        v = 0.0
    return [ms, num(o), num(h), num(low), num(c), num(v), ms + step - 1, num(v * c), 0,
            num(v / 2), num(v * c / 2), "0"]  # fmt: skip


def order(o: VenueOrder, venue: Venue) -> dict[str, Any]:
    """GET /api/v3/order layout."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": num(o.price),
        "origQty": num(o.qty),
        "executedQty": num(o.executed),
        "cummulativeQuoteQty": num(o.quote_qty),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "stopPrice": num(o.stop_price),
        "icebergQty": num(0.0),
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.is_open,
        "workingTime": o.time,
        "origQuoteOrderQty": num(0.0),
        "selfTradePreventionMode": "NONE",
    }


def order_ack(o: VenueOrder, venue: Venue, resp_type: str) -> dict[str, Any]:
    """POST /api/v3/order layout for ``newOrderRespType`` ACK, RESULT or FULL."""
    ack = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": venue.now_ms,
    }
    if resp_type == "ACK":
        return ack
    result = {**ack, **{k: v for k, v in order(o, venue).items() if k not in ("time",)}}
    for key in ("stopPrice", "icebergQty", "updateTime", "isWorking", "origQuoteOrderQty"):
        result.pop(key, None)
    if resp_type == "FULL":
        by_id = {t.trade_id: t for t in venue.trades if t.order_id == o.order_id}
        result["fills"] = [
            {
                "price": num(t.price),
                "qty": num(t.qty),
                "commission": num(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in by_id.values()
        ]
    return result


def trade(t: VenueTrade) -> dict[str, Any]:
    """GET /api/v3/myTrades layout."""
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": num(t.price),
        "qty": num(t.qty),
        "quoteQty": num(t.price * t.qty),
        "commission": num(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.is_buyer,
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }


def account(venue: Venue) -> dict[str, Any]:
    """GET /api/v3/account layout."""
    bps = round(venue.fee_rate * 10_000)
    rate = num(venue.fee_rate)
    return {
        "makerCommission": bps,
        "takerCommission": bps,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": rate, "taker": rate, "buyer": num(0), "seller": num(0)},
        "canTrade": True,
        "canWithdraw": False,
        "canDeposit": False,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": venue.now_ms,
        "accountType": "SPOT",
        "balances": [
            {"asset": a, "free": num(venue.free[a]), "locked": num(venue.locked[a])}
            for a in sorted(venue.free)
        ],
        "permissions": ["SPOT"],
        "uid": 1,
    }


def coins(venue: Venue) -> list[dict[str, Any]]:
    """GET /sapi/v1/capital/config/getall layout (ccxt's fetchCurrencies when keys are set)."""
    out = []
    for asset in sorted(venue.free):
        network = {
            "network": asset,
            "coin": asset,
            "name": asset,
            "isDefault": True,
            "depositEnable": False,
            "withdrawEnable": False,
            "withdrawFee": "0",
            "withdrawMin": "0",
            "withdrawMax": "0",
            "withdrawIntegerMultiple": "0.00000001",
            "minConfirm": 1,
        }
        out.append(
            {
                "coin": asset,
                "name": asset,
                "free": num(venue.free[asset]),
                "locked": num(venue.locked[asset]),
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "trading": True,
                "isLegalMoney": False,
                "networkList": [network],
            }
        )
    return out


def ticker_24h(venue: Venue, symbol: str) -> dict[str, Any]:
    """GET /api/v3/ticker/24hr layout over the last 24 hours of closed bars + the open."""
    candles = venue.market(symbol).candles
    day = candles[(candles.index >= venue.now - pd.Timedelta(days=1)) & (candles.index < venue.now)]
    last = venue.price(symbol)
    first = float(day["open"].iloc[0]) if len(day) else last
    high = max([last, *day["high"].tolist()])
    low = min([last, *day["low"].tolist()])
    volume = float(day["volume"].sum())
    return {
        "symbol": symbol,
        "priceChange": num(last - first),
        "priceChangePercent": f"{(last / first - 1) * 100:.3f}",
        "weightedAvgPrice": num(last),
        "prevClosePrice": num(first),
        "lastPrice": num(last),
        "lastQty": num(0),
        "bidPrice": num(last),
        "bidQty": num(1),
        "askPrice": num(last),
        "askQty": num(1),
        "openPrice": num(first),
        "highPrice": num(high),
        "lowPrice": num(low),
        "volume": num(volume),
        "quoteVolume": num(volume * last),
        "openTime": venue.now_ms - 86_400_000,
        "closeTime": venue.now_ms,
        "firstId": 0,
        "lastId": 0,
        "count": len(day),
    }


def execution_report(update: OrderUpdate, venue: Venue) -> dict[str, Any]:
    """The user-data stream's ``executionReport`` event for one order state change."""
    o, t = update.order, update.trade
    last_qty, last_price = (t.qty, t.price) if t is not None else (0.0, 0.0)
    when = t.time if t is not None else o.update_time
    client_id, original = o.client_order_id, ""
    if update.cancel_client_id is not None:  # a cancel: "c" is the request's id, "C" the order's
        client_id, original = update.cancel_client_id, o.client_order_id
    return {
        "e": "executionReport",
        "E": max(venue.now_ms, when),
        "s": o.symbol,
        "c": client_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": num(o.qty),
        "p": num(o.price),
        "P": num(0.0),
        "F": num(0.0),
        "g": -1,
        "C": original,
        "x": update.execution,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": num(last_qty),
        "z": num(o.executed),
        "L": num(last_price),
        "n": num(t.commission) if t is not None else "0",
        "N": t.commission_asset if t is not None else None,
        "T": when,
        "t": t.trade_id if t is not None else -1,
        "I": 0,
        "w": o.is_open and o.type != "MARKET",
        "m": t.is_maker if t is not None else False,
        "M": t is not None,
        "O": o.time,
        "Z": num(o.quote_qty),
        "Y": num(last_qty * last_price),
        "Q": num(0.0),
        "W": o.time,
        "V": "NONE",
    }


def account_position(venue: Venue, assets: list[str], event_ms: int) -> dict[str, Any]:
    """The user-data stream's ``outboundAccountPosition`` event: ``assets`` as they are now."""
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [{"a": a, "f": num(venue.free[a]), "l": num(venue.locked[a])} for a in assets],
    }
