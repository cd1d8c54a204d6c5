"""The exchange broker sends the size the risk manager approved, only rounded to the market's
rules (lot step, minimum amount and notional), and refuses — saying why in the ledger — what
rounding or the account cannot honour; checked through the real ccxt client on the emulator."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from live_helpers import SYMBOL, client, quick_calls

from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.engine.types import Bar, Order
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus
from aitrader.venues.ccxt.broker import ExchangeBroker

STEP = 1e-5  # the emulator's BTCUSDT lot step


@pytest.fixture
def emu() -> Iterator[ExchangeEmulator]:
    config = EmulatorConfig(markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0})
    with ExchangeEmulator(config) as running:
        yield running


def started(emu: ExchangeEmulator, ledger: Ledger) -> tuple[ExchangeBroker, float]:
    """A fresh broker on the emulator, its decision bar closing at the exchange's price now
    (so the fill price equals the price the risk manager sized at)."""
    exchange = client(emu)
    exchange.load_markets()
    broker = ExchangeBroker(exchange, [SYMBOL], ledger, "sizing", calls=quick_calls(exchange))
    broker.start()
    price = emu.venue.price("BTCUSDT")
    bar = Bar(SYMBOL, emu.now - pd.Timedelta(hours=1), price, price, price, price, 1.0)
    broker.open_bar(0, {SYMBOL: bar})
    return broker, price


def floored(qty: float) -> float:
    return math.floor(qty / STEP + 1e-9) * STEP


def notes(ledger: Ledger) -> list[str]:
    return [e.message for e in ledger.events("broker") if e.level == "warning"]


def test_an_all_in_target_is_sent_as_approved_without_a_cash_buffer(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "live.db") as ledger:
        broker, price = started(emu, ledger)
        assert broker.submit(Order(SYMBOL, "all-in", target_fraction=1.0))
        (sent,) = emu.venue.orders.values()
        assert sent.qty == pytest.approx(floored(10_000.0 / price), abs=1e-12)
        (order,) = ledger.orders()
        assert order.qty == pytest.approx(sent.qty, abs=1e-12)
        assert order.status is OrderStatus.FILLED
        assert 10_000.0 - sent.qty * price < STEP * price  # only the lot step is left over


def test_a_fraction_becomes_the_approved_quantity_on_the_lot_grid(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "live.db") as ledger:
        broker, price = started(emu, ledger)
        assert broker.submit(Order(SYMBOL, "part", target_fraction=0.37))
        (sent,) = emu.venue.orders.values()
        assert sent.qty == pytest.approx(floored(0.37 * 10_000.0 / price), abs=1e-12)
        assert notes(ledger) == []


def test_a_size_the_cash_cannot_pay_is_refused_not_shrunk(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "live.db") as ledger:
        broker, _ = started(emu, ledger)
        assert not broker.submit(Order(SYMBOL, "levered", target_fraction=1.5))
        assert ("POST", "/api/v3/order") not in emu.requests
        assert ledger.orders() == []
        (note,) = notes(ledger)
        assert "exceeds the 10000.00 USDT cash: not sent" in note


def test_an_amount_below_the_lot_step_is_refused_with_the_reason(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "live.db") as ledger:
        broker, _ = started(emu, ledger)
        assert broker.submit(Order(SYMBOL, "entry", target_fraction=0.5))
        held = broker.positions[SYMBOL].qty
        assert not broker.submit(Order(SYMBOL, "crumb", qty=-4e-6))
        assert broker.positions[SYMBOL].qty == held
        (note,) = notes(ledger)
        assert "4e-06 BTC rounds to 0 at the market's lot step: not sent" in note


def test_a_sale_beyond_the_holding_is_refused(emu: ExchangeEmulator, tmp_path: Path) -> None:
    with Ledger(tmp_path / "live.db") as ledger:
        broker, _ = started(emu, ledger)
        assert broker.submit(Order(SYMBOL, "entry", target_fraction=0.5))
        held = broker.positions[SYMBOL].qty
        assert not broker.submit(Order(SYMBOL, "oversold", qty=-(held + 0.01)))
        assert len(ledger.orders()) == 1
        (note,) = notes(ledger)
        assert "exceeds the" in note and "held (spot): not sent" in note
