"""``/trades`` keeps its trade book between calls and adds only the fills recorded since:
a fill written after a first call shows in the next one, and paging does not change totals."""

from __future__ import annotations

import pandas as pd
from ops_helpers import client

from aitrader.engine.types import Fill, Liquidity, Order
from aitrader.live.ledger import Ledger


def _fill(ledger: Ledger, qty: float, price: float, when: pd.Timestamp) -> None:
    order = Order("BTC/USD", "cache-test|1|signal", qty, reason="signal")
    ledger.record_intent(order, time=when)
    ledger.mark_submitted(order.client_order_id)
    fill = Fill(when, "BTC/USD", qty, price, 1.0, 0.0, Liquidity.TAKER, order.client_order_id)
    ledger.record_fill(fill, "cache-test:1")


def test_a_fill_after_the_first_call_shows_in_the_next(api: tuple[str, Ledger]) -> None:
    url, ledger = api
    http = client(url)
    before = http.get("/trades", params={"limit": 1000}).json()
    pages = [http.get("/trades", params={"limit": 7, "offset": o}).json() for o in (0, 7)]
    assert all(p["total"] == before["total"] for p in pages)
    assert pages[0]["items"] + pages[1]["items"] == before["items"][:14]
    held = ledger.positions()["BTC/USD"].qty
    when = pd.Timestamp("2030-01-01", tz="UTC")
    _fill(ledger, -held if held else 0.5, 12_345.0, when)
    after = http.get("/trades", params={"limit": 1000}).json()
    last = after["items"][-1]
    if held:  # the open trade closed at our price
        assert after["total"] == before["total"] and last["is_open"] is False
        assert last["exit_price"] == 12_345.0
    else:  # a new open trade
        assert after["total"] == before["total"] + 1 and last["is_open"] is True
        assert last["entry_price"] == 12_345.0
