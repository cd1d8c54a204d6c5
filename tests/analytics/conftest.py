"""Factories for analytics tests: BacktestResults built by hand from real bundled candles.

The analytics package must not depend on the engine, so these results come from a tiny long-only
SMA-crossover replay written here (decision at close, fill at the next open, taker fee and
slippage on notional), with a buy-and-hold benchmark under the same costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.engine.result import FILL_COLUMNS, TRADE_COLUMNS, BacktestResult


@dataclass
class _Book:
    """Running state of the replay: cash, position and the rows written so far."""

    cash: float
    qty: float = 0.0
    entry: dict[str, float | int | pd.Timestamp] = field(default_factory=dict)
    trades: list[dict[str, object]] = field(default_factory=list)
    fills: list[dict[str, object]] = field(default_factory=list)

    def fill(
        self, time: pd.Timestamp, side: int, qty: float, ref: float, cost: tuple[float, float]
    ) -> tuple[float, float, float]:
        fee_rate, slip = cost
        price = ref * (1 + side * slip)
        fee = qty * price * fee_rate
        self.fills.append(
            dict(
                zip(
                    FILL_COLUMNS,
                    (
                        time,
                        "BTC/USD",
                        side,
                        qty,
                        price,
                        fee,
                        qty * abs(price - ref),
                        "taker",
                        f"o{len(self.fills)}",
                        "signal",
                    ),
                    strict=True,
                )
            )
        )
        self.cash -= side * qty * price + fee
        return price, fee, qty * abs(price - ref)


def replay_sma_cross(
    candles: pd.DataFrame,
    timeframe: str,
    calendar: str = "crypto",
    windows: tuple[int, int] = (10, 30),
    cost: tuple[float, float] = (0.001, 0.0002),
    cash: float = 10_000.0,
) -> BacktestResult:
    """Long while SMA(fast) > SMA(slow), all-in; ``cost`` = (fee rate, slippage fraction)."""
    close, opens = candles["close"].to_numpy(), candles["open"].to_numpy()
    fast = candles["close"].rolling(windows[0]).mean().to_numpy()
    slow = candles["close"].rolling(windows[1]).mean().to_numpy()
    want = np.nan_to_num(fast) > np.nan_to_num(slow)
    book, times, n = _Book(cash), candles.index, len(candles)
    equity, cash_arr, expo = np.empty(n), np.empty(n), np.empty(n)
    for t in range(n):
        if t > 0 and want[t - 1] and book.qty == 0:
            qty = book.cash / (opens[t] * (1 + cost[1]) * (1 + cost[0]))
            price, fee, slip = book.fill(times[t], 1, qty, opens[t], cost)
            book.qty, book.entry = qty, {"t": t, "price": price, "fee": fee, "slip": slip}
        elif t > 0 and not want[t - 1] and book.qty > 0:
            price, fee, slip = book.fill(times[t], -1, book.qty, opens[t], cost)
            book.trades.append(_trade(book, times, t, price, fee, slip, is_open=False))
            book.qty = 0.0
        equity[t] = book.cash + book.qty * close[t]
        cash_arr[t], expo[t] = book.cash, book.qty * close[t] / equity[t]
    if book.qty > 0:
        book.trades.append(_trade(book, times, n - 1, close[-1], 0.0, 0.0, is_open=True))
    return BacktestResult(
        equity=pd.Series(equity, index=times, name="equity"),
        cash=pd.Series(cash_arr, index=times, name="cash"),
        exposure=pd.Series(expo, index=times, name="exposure"),
        trades=pd.DataFrame(book.trades, columns=list(TRADE_COLUMNS)),
        fills=pd.DataFrame(book.fills, columns=list(FILL_COLUMNS)),
        initial_cash=cash,
        timeframe=timeframe,
        calendar=calendar,
        zero_cost=cost == (0.0, 0.0),
        name=f"sma-cross {windows[0]}/{windows[1]}",
        prices=candles,
        benchmarks={"buy-and-hold": buy_and_hold_equity(candles, cost, cash)},
    )


def _trade(
    book: _Book, times: pd.Index, t: int, price: float, fee: float, slip: float, is_open: bool
) -> dict[str, object]:
    entry = book.entry
    pnl = book.qty * (price - float(entry["price"])) - float(entry["fee"]) - fee
    return dict(
        zip(
            TRADE_COLUMNS,
            (
                "BTC/USD",
                1,
                book.qty,
                times[int(entry["t"])],
                entry["price"],
                pd.NaT if is_open else times[t],
                price,
                pnl,
                pnl / (book.qty * float(entry["price"])),
                float(entry["fee"]) + fee,
                float(entry["slip"]) + slip,
                t - int(entry["t"]),
                "end" if is_open else "signal",
                is_open,
            ),
            strict=True,
        )
    )


def buy_and_hold_equity(
    candles: pd.DataFrame, cost: tuple[float, float] = (0.001, 0.0002), cash: float = 10_000.0
) -> pd.Series:
    """All-in at the first open (fee and slippage paid), held to the end."""
    price = candles["open"].iloc[0] * (1 + cost[1])
    qty = cash / (price * (1 + cost[0]))
    rest = cash - qty * price * (1 + cost[0])
    return (rest + qty * candles["close"]).rename("buy-and-hold")


def flat_result(candles: pd.DataFrame, timeframe: str, cash: float = 10_000.0) -> BacktestResult:
    """A run that never trades: equity and cash stay at the initial cash."""
    constant = pd.Series(cash, index=candles.index, dtype=np.float64)
    return BacktestResult(
        equity=constant.rename("equity"),
        cash=constant.rename("cash"),
        exposure=pd.Series(0.0, index=candles.index),
        trades=pd.DataFrame(columns=list(TRADE_COLUMNS)),
        fills=pd.DataFrame(columns=list(FILL_COLUMNS)),
        initial_cash=cash,
        timeframe=timeframe,
        name="flat",
        prices=candles,
    )


@pytest.fixture(scope="session")
def btc_1h() -> pd.DataFrame:
    """Every bundled hourly BTC/USD candle (Kraken, 2017-2022, 52k bars)."""
    return load_sample("BTC-USD-1h")


@pytest.fixture(scope="session")
def spy_1d() -> pd.DataFrame:
    """Daily SPY candles 1999-2020 (equity calendar)."""
    return load_sample("SPY-1d")


@pytest.fixture(scope="session")
def btc_result(btc_1h: pd.DataFrame) -> BacktestResult:
    """SMA(10/30) long-only replay on all hourly BTC bars, with costs."""
    return replay_sma_cross(btc_1h, "1h")


@pytest.fixture(scope="session")
def replay() -> Callable[..., BacktestResult]:
    return replay_sma_cross


@pytest.fixture(scope="session")
def make_flat() -> Callable[..., BacktestResult]:
    return flat_result
