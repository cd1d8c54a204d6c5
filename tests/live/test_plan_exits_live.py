"""A trade plan on the live exchange broker against the local emulator, through the real ccxt
client: TP1 sells half once, the stop moves to break-even, the rest leaves once — across a
restart between TP1 and the final exit — and the ledger equals the exchange."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_helpers import (
    SYMBOL,
    SteppingFeed,
    account,
    assert_ledger_equals_exchange,
    client,
    quick_calls,
)

from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.records import OrderStatus
from aitrader.live.runner import GuardConfig
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.strategy.base import PLAN_FIELDS
from aitrader.venues.ccxt.broker import ExchangeBroker
from aitrader.venues.ccxt.venue import LiveSetup, live_runner

RISK = RiskConfig(limits=LimitsConfig(require_stop=False, risk_per_trade=1.0))
BARS = 80


@pytest.fixture
def emu() -> Any:
    config = EmulatorConfig(markets={"BTCUSDT": "BTC-USD-1h"}, balances={"USDT": 10_000.0})
    with ExchangeEmulator(config) as running:
        yield running


def plan_feed() -> ArrayFeed:
    """One decision at bar 1: half the equity long, stop 5 % below, TP1 0.1 % above for half
    the position, break-even after TP1, a 60-bar time stop as the last resort."""
    fraction = np.full((BARS, 1), math.nan)
    fraction[1] = 0.5
    plan = np.full((BARS, len(PLAN_FIELDS), 1), math.nan)
    plan[1, PLAN_FIELDS.index("tp1_share")] = 0.5
    plan[1, PLAN_FIELDS.index("break_even")] = 1.0
    plan[1, PLAN_FIELDS.index("time_stop")] = 60.0
    nan = np.full((1, 1), math.nan)
    return ArrayFeed(fraction, nan, np.full((1, 1), 0.05), np.full((1, 1), 0.001), plan)


class Died(BaseException):
    """The process is killed (not an error the runner could retry)."""


def run(
    emu: ExchangeEmulator, ledger: Ledger, bars: int, exchange: Any | None = None
) -> ExchangeBroker:
    exchange = exchange or client(emu)
    runner = live_runner(
        exchange, [SYMBOL], plan_feed(), [SteppingFeed(emu, bars, ledger=ledger)], ledger,
        LiveSetup(
            RISK, {"test": "plan"}, calls=quick_calls(exchange),
            guard=GuardConfig(backoff_base=0.01, backoff_cap=0.05),
            start=emu.now - pd.Timedelta(hours=1),
        ),
    )  # fmt: skip
    asyncio.run(asyncio.wait_for(runner.run(), 90))
    broker = runner.engine.broker
    assert isinstance(broker, ExchangeBroker)
    return broker


def sells(ledger: Ledger) -> list[tuple[str, float]]:
    """(reason, quantity) of every filled sell, in order."""
    return [
        (o.reason, abs(o.filled_qty))
        for o in ledger.orders()
        if o.qty < 0 and o.status is OrderStatus.FILLED
    ]


@pytest.mark.timeout(300)
def test_tp1_half_then_break_even_once_across_a_restart(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "live.db"
    with Ledger(path) as ledger:  # the first process: the entry, then TP1 …
        broker = run(emu, ledger, 3)
        bought = account(emu)["BTC"] + sum(q for _, q in sells(ledger))
        assert [r for r, _ in sells(ledger)] == ["take_profit"]
        (_, tp1_qty), held = sells(ledger)[0], account(emu)["BTC"]
        assert tp1_qty == pytest.approx(bought / 2, abs=1e-5)  # half, on the amount step
        assert held > 0 and broker.brackets[SYMBOL][1] != broker.brackets[SYMBOL][1]  # no TP
        entry = ledger.fills().iloc[0]["price"]
        assert broker.brackets[SYMBOL][0] == pytest.approx(entry)  # the stop at break-even
        assert_ledger_equals_exchange(emu, ledger)
    with Ledger(path) as ledger:  # … it stops; the second resumes until the plan is over
        broker = run(emu, ledger, BARS - 5)
        assert broker.reconciled is not None
        reasons = [r for r, _ in sells(ledger)]
        assert reasons[0] == "take_profit" and reasons.count("take_profit") == 1
        assert len(reasons) == 2 and reasons[1] in ("stop_loss", "time_stop")
        assert sum(q for _, q in sells(ledger)) == pytest.approx(bought, abs=1e-5)
        assert account(emu)["BTC"] == pytest.approx(0.0, abs=1e-5)  # dust at most
        if reasons[1] == "stop_loss":  # at break-even: the exit is at or below the entry
            last = ledger.fills().iloc[-1]["price"]
            assert last <= entry * 1.0001
        entries = [o for o in ledger.orders() if o.qty > 0]
        assert len(entries) == 1  # one plan, one entry
        assert_ledger_equals_exchange(emu, ledger)


@pytest.mark.timeout(300)
def test_killed_right_after_sending_tp1_it_is_not_sent_again(
    emu: ExchangeEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "live.db"
    exchange = client(emu)
    send = exchange.create_order

    def dies_after_a_sell(*args: Any, **kwargs: Any) -> Any:
        placed = send(*args, **kwargs)
        if args[2] == "sell" and args[1] == "market":  # TP1 is on the exchange, unrecorded
            raise Died
        return placed

    exchange.create_order = dies_after_a_sell
    with Ledger(path) as ledger, pytest.raises(Died):
        run(emu, ledger, 3, exchange)
    with Ledger(path) as ledger:
        broker = run(emu, ledger, BARS - 5)
        assert broker.reconciled is not None
        reasons = [r for r, _ in sells(ledger)]
        assert reasons[0] == "take_profit" and len(reasons) == 2
        tp1 = [o for o in emu.venue.orders.values() if o.side == "SELL" and o.type == "MARKET"]
        assert len(tp1) == 2  # TP1 once, the final exit once (no stop rested: it was crossed)
        assert account(emu)["BTC"] == pytest.approx(0.0, abs=1e-5)
        assert_ledger_equals_exchange(emu, ledger)
