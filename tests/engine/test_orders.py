"""SimBroker resting orders, hand-computed on crafted bars: limit, stop, stop-limit, reduce-only,
IOC / FOK, idempotent client order ids and cancel.

Costs: taker 0.1 %, maker 0.02 %, slippage 10 bps on taker fills, no spread or impact; cash
10,000. An order submitted at bar i's close is first eligible at bar i + 1.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from aitrader.engine.broker import SimBroker
from aitrader.engine.config import BrokerConfig
from aitrader.engine.types import Bar, Liquidity, Order, OrderType, TimeInForce

TAKER, MAKER, SLIP = 0.001, 0.0002, 0.001
COSTS: dict[str, Any] = {"taker_fee": TAKER, "maker_fee": MAKER, "slippage_bps": 10, "impact": 0}
START = pd.Timestamp("2024-01-01", tz="UTC")


def make_broker(**overrides: Any) -> SimBroker:
    settings = {**COSTS, "max_volume_share": None, **overrides}
    return SimBroker(["X"], BrokerConfig(**settings))


def step(
    broker: SimBroker, i: int, ohlc: tuple[float, float, float, float], volume: float = 1e9
) -> None:
    """One bar through the broker (no strategy: orders are submitted between bars)."""
    bars = {"X": Bar("X", START + pd.Timedelta(hours=i), *ohlc, volume)}
    broker.open_bar(i, bars)
    broker.close_bar(bars)


def order(oid: str, qty: float, **kwargs: Any) -> Order:
    return Order("X", oid, qty, **kwargs)


def test_limit_buy_waits_for_the_low_and_fills_at_the_limit_as_maker() -> None:
    broker = make_broker()
    broker.submit(order("lim", 2.0, type=OrderType.LIMIT, limit_price=99.0))
    step(broker, 0, (100.0, 101.0, 99.5, 100.0))  # low above the limit: nothing
    assert broker.fills == [] and "lim" in broker.resting
    step(broker, 1, (100.0, 100.5, 98.0, 99.0))
    (fill,) = broker.fills
    assert (fill.qty, fill.price, fill.liquidity) == (2.0, 99.0, Liquidity.MAKER)
    assert fill.fee == pytest.approx(2 * 99.0 * MAKER, abs=1e-12)  # 0.0396
    assert fill.slippage == 0.0
    assert broker.cash == pytest.approx(10_000 - 198.0 - 0.0396, abs=1e-9)
    assert broker.positions["X"].qty == 2.0 and broker.resting == {}


def test_limit_buy_fills_at_the_open_when_the_bar_opens_below_it() -> None:
    broker = make_broker()
    broker.submit(order("lim", 1.0, type=OrderType.LIMIT, limit_price=99.0))
    step(broker, 0, (97.0, 98.0, 96.0, 97.5))
    (fill,) = broker.fills
    assert (fill.price, fill.liquidity) == (97.0, Liquidity.MAKER)
    assert fill.fee == pytest.approx(97.0 * MAKER, abs=1e-12)


def test_limit_sell_fills_when_the_high_reaches_it() -> None:
    broker = make_broker()
    broker.submit(order("lim", -1.0, type=OrderType.LIMIT, limit_price=101.0))
    step(broker, 0, (100.0, 100.9, 99.0, 100.0))
    assert broker.fills == []
    step(broker, 1, (100.0, 102.0, 99.0, 100.0))
    (fill,) = broker.fills
    assert (fill.qty, fill.price, fill.liquidity) == (-1.0, 101.0, Liquidity.MAKER)
    assert broker.positions["X"].qty == -1.0


def test_stop_buy_triggers_on_the_high_and_fills_at_the_stop_as_taker() -> None:
    broker = make_broker()
    broker.submit(order("stop", 2.0, type=OrderType.STOP, stop_price=105.0))
    step(broker, 0, (100.0, 104.9, 99.0, 104.0))
    assert broker.fills == []
    step(broker, 1, (101.0, 106.0, 100.0, 105.5))
    (fill,) = broker.fills
    price = 105.0 * (1 + SLIP)  # 105.105
    assert (fill.qty, fill.liquidity) == (2.0, Liquidity.TAKER)
    assert fill.price == pytest.approx(price, abs=1e-12)
    assert fill.fee == pytest.approx(2 * price * TAKER, abs=1e-12)  # 0.21021
    assert fill.slippage == pytest.approx(2 * 105.0 * SLIP, abs=1e-12)  # 0.21
    assert broker.cash == pytest.approx(10_000 - 210.21 - 0.21021, abs=1e-9)


def test_stop_buy_gapping_over_the_stop_fills_at_the_open() -> None:
    broker = make_broker()
    broker.submit(order("stop", 1.0, type=OrderType.STOP, stop_price=105.0))
    step(broker, 0, (107.0, 108.0, 106.5, 107.5))
    (fill,) = broker.fills
    assert fill.price == pytest.approx(107.0 * (1 + SLIP), abs=1e-12)  # 107.107


def test_stop_sell_triggers_on_the_low() -> None:
    broker = make_broker()
    broker.submit(order("stop", -1.0, type=OrderType.STOP, stop_price=95.0))
    step(broker, 0, (100.0, 101.0, 95.5, 96.0))
    assert broker.fills == []
    step(broker, 1, (96.0, 96.5, 94.0, 94.5))
    (fill,) = broker.fills
    assert fill.price == pytest.approx(95.0 * (1 - SLIP), abs=1e-12)  # 94.905
    assert broker.positions["X"].qty == -1.0


def test_stop_limit_needs_the_trigger_before_the_limit_counts() -> None:
    broker = make_broker()
    broker.submit(order("sl", 1.0, type=OrderType.STOP_LIMIT, stop_price=105.0, limit_price=104.0))
    step(broker, 0, (100.0, 103.0, 99.0, 102.0))  # low under the limit, but not triggered
    assert broker.fills == [] and "sl" in broker.resting


def test_stop_limit_triggered_without_reaching_the_limit_rests_as_a_limit() -> None:
    broker = make_broker()
    broker.submit(order("sl", 1.0, type=OrderType.STOP_LIMIT, stop_price=105.0, limit_price=104.0))
    step(broker, 0, (103.0, 106.0, 104.5, 105.0))  # triggered at 105; low 104.5 > limit
    assert broker.fills == []
    assert broker.resting["sl"].type is OrderType.LIMIT
    step(broker, 1, (104.8, 104.9, 103.5, 104.0))  # no new trigger needed: a plain limit now
    (fill,) = broker.fills
    assert (fill.price, fill.liquidity) == (104.0, Liquidity.MAKER)
    assert fill.fee == pytest.approx(104.0 * MAKER, abs=1e-12)


def test_stop_limit_marketable_on_trigger_never_pays_more_than_the_limit() -> None:
    broker = make_broker()
    broker.submit(order("a", 1.0, type=OrderType.STOP_LIMIT, stop_price=105.0, limit_price=106.0))
    broker.submit(order("b", 1.0, type=OrderType.STOP_LIMIT, stop_price=105.0, limit_price=105.05))
    step(broker, 0, (101.0, 107.0, 100.0, 106.0))
    first, second = broker.fills
    assert first.price == pytest.approx(105.105, abs=1e-12)  # stop + 10 bps, inside the limit
    assert first.liquidity is Liquidity.TAKER
    assert second.price == 105.05  # 105.105 would break the limit: capped at it
    assert second.fee == pytest.approx(105.05 * TAKER, abs=1e-12)


def test_reduce_only_never_increases_or_flips_a_position() -> None:
    broker = make_broker()
    broker.submit(order("buy", 1.0))
    step(broker, 0, (100.0, 101.0, 99.0, 100.0))
    assert broker.positions["X"].qty == 1.0
    broker.submit(order("grow", 1.0, reduce_only=True))  # same side as the position
    broker.submit(order("close", -3.0, reduce_only=True))  # larger than the position
    step(broker, 1, (102.0, 103.0, 101.0, 102.0))
    assert [f.client_order_id for f in broker.fills] == ["buy", "close"]
    assert broker.fills[1].qty == -1.0
    assert broker.fills[1].price == pytest.approx(102.0 * (1 - SLIP), abs=1e-12)
    assert broker.positions["X"].qty == 0.0
    assert broker.resting == {}  # the unfilled rest of "close" and "grow" are dropped
    broker.submit(order("flat", -1.0, reduce_only=True))
    step(broker, 2, (102.0, 103.0, 101.0, 102.0))
    assert len(broker.fills) == 2 and broker.positions["X"].qty == 0.0


def test_ioc_fills_what_the_volume_cap_allows_and_drops_the_rest() -> None:
    broker = make_broker(max_volume_share=0.1)
    broker.submit(order("ioc", 3.0, time_in_force=TimeInForce.IOC))
    step(broker, 0, (100.0, 101.0, 99.0, 100.0), volume=10.0)  # cap: 1 unit
    step(broker, 1, (100.0, 101.0, 99.0, 100.0), volume=10.0)
    (fill,) = broker.fills
    assert fill.qty == 1.0 and broker.positions["X"].qty == 1.0
    assert broker.resting == {}


def test_gtc_keeps_the_remainder_of_a_volume_capped_order() -> None:
    broker = make_broker(max_volume_share=0.1)
    broker.submit(order("gtc", 2.5))
    for i in range(4):
        step(broker, i, (100.0, 101.0, 99.0, 100.0), volume=10.0)
    assert [f.qty for f in broker.fills] == [1.0, 1.0, 0.5]
    assert broker.resting == {}


def test_fok_cancels_when_the_volume_cap_is_below_the_size() -> None:
    broker = make_broker(max_volume_share=0.1)
    broker.submit(order("big", 3.0, time_in_force=TimeInForce.FOK))
    broker.submit(order("small", 0.5, time_in_force=TimeInForce.FOK))
    step(broker, 0, (100.0, 101.0, 99.0, 100.0), volume=10.0)
    step(broker, 1, (100.0, 101.0, 99.0, 100.0), volume=10.0)
    (fill,) = broker.fills
    assert (fill.client_order_id, fill.qty) == ("small", 0.5)
    assert broker.resting == {}


def test_resting_orders_get_the_bar_volume_cap_with_close_fills_too() -> None:
    broker = make_broker(max_volume_share=0.1, fill_at="close")
    broker.submit(order("mkt", 0.5, time_in_force=TimeInForce.FOK))
    step(broker, 0, (100.0, 101.0, 99.0, 100.0), volume=10.0)
    (fill,) = broker.fills
    assert fill.qty == 0.5 and fill.price == pytest.approx(100.1, abs=1e-12)


def test_same_client_order_id_twice_is_one_order_and_one_set_of_fills() -> None:
    broker = make_broker()
    assert broker.submit(order("dup", 1.0, type=OrderType.LIMIT, limit_price=99.0))
    assert not broker.submit(order("dup", 5.0, type=OrderType.LIMIT, limit_price=99.0))
    assert list(broker.resting) == ["dup"] and broker.resting["dup"].qty == 1.0
    step(broker, 0, (100.0, 100.0, 98.0, 99.0))
    assert not broker.submit(order("dup", 1.0, type=OrderType.LIMIT, limit_price=99.0))
    step(broker, 1, (100.0, 100.0, 98.0, 99.0))
    assert [(f.client_order_id, f.qty) for f in broker.fills] == [("dup", 1.0)]
    assert broker.positions["X"].qty == 1.0


def test_cancel_removes_a_resting_order() -> None:
    broker = make_broker()
    broker.submit(order("lim", 1.0, type=OrderType.LIMIT, limit_price=99.0))
    assert broker.cancel("lim")
    assert not broker.cancel("lim") and not broker.cancel("unknown")
    step(broker, 0, (100.0, 100.0, 90.0, 95.0))
    assert broker.fills == [] and broker.resting == {}
    assert broker.cash == 10_000.0


def test_cancel_removes_a_pending_target_order() -> None:
    broker = make_broker()
    broker.submit(Order("X", "target", target_fraction=0.5))
    assert broker.cancel("target")
    step(broker, 0, (100.0, 101.0, 99.0, 100.0))
    assert broker.fills == [] and broker.positions["X"].qty == 0.0


def test_fills_carry_the_order_reason_not_a_piece_of_its_id() -> None:
    broker = make_broker()
    broker.submit(order("my-order-1", 1.0, reason="rebalance"))
    step(broker, 0, (100.0, 101.0, 99.0, 100.0))
    assert broker.fills[0].reason == "rebalance"
