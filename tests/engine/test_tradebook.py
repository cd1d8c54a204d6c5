"""Round trips rebuilt from fills: exact flat closes a trade; a spot remainder below the
market's minimum amount (``dust``) closes it too."""

from __future__ import annotations

import pandas as pd

from aitrader.engine.tradebook import TradeBook
from aitrader.engine.types import Fill, Liquidity

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def fill(hour: int, qty: float, price: float, fee: float = 0.0) -> Fill:
    time = T0 + pd.Timedelta(hours=hour)
    return Fill(time, "BTC/USDT", qty, price, fee, 0.0, Liquidity.TAKER, f"o{hour}")


def test_an_exact_round_trip_closes_with_its_pnl() -> None:
    book = TradeBook()
    assert book.add(fill(0, 0.5, 100.0, fee=0.05)) is None
    done = book.add(fill(1, -0.5, 110.0, fee=0.055))
    assert done is not None and done.pnl == 0.5 * 10.0 - 0.105
    assert not book.open


def test_dust_below_the_minimum_closes_a_spot_round_trip() -> None:
    # bought 0.012 BTC, 0.1 % fee taken in BTC: 0.011988 held; the sell is floored to 0.01198
    plain, spot = TradeBook(), TradeBook({"BTC/USDT": 1e-5})
    for book in (plain, spot):
        book.add(fill(0, 0.011988, 40_000.0, fee=0.48))
    assert plain.add(fill(1, -0.01198, 41_000.0, fee=0.49)) is None  # 8e-6 BTC keeps it open
    done = spot.add(fill(1, -0.01198, 41_000.0, fee=0.49))
    assert done is not None and not spot.open
    assert done.exit_qty == 0.01198 and done.pnl < 0.01198 * 1_000.0
    # the next entry starts a new trade; selling it with the old dust closes it too
    spot.add(fill(2, 0.01, 40_000.0))
    assert spot.add(fill(3, -0.01001, 40_500.0)) is not None and not spot.open
