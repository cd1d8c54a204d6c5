"""replay(): the bars a stored-candle source yields are ordinary, immutable Bars."""

from __future__ import annotations

import dataclasses

import pytest
from engine_factories import candles

from aitrader.engine.loop import replay
from aitrader.engine.types import Bar


def test_replayed_bars_equal_constructed_bars() -> None:
    btc = candles([(100.0, 110.0, 90.0, 105.0), (105.0, 106.0, 95.0, 96.5)], volume=7.0)
    eth = candles([(10.0, 11.0, 9.0, 10.5), (10.5, 10.6, 9.5, 9.75)], volume=3.0)
    events = list(replay({"BTC": btc, "ETH": eth}))
    assert [list(e) for e in events] == [["BTC", "ETH"], ["BTC", "ETH"]]
    second = Bar("ETH", eth.index[1], 10.5, 10.6, 9.5, 9.75, 3.0)
    got = events[1]["ETH"]
    assert got == second and hash(got) == hash(second) and repr(got) == repr(second)
    assert dataclasses.asdict(got) == dataclasses.asdict(second)
    assert dataclasses.replace(got, close=1.0).close == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.close = 2.0  # type: ignore[misc]
    single = list(replay({"BTC": btc}))
    assert single[1] == {"BTC": Bar("BTC", btc.index[1], 105.0, 106.0, 95.0, 96.5, 7.0)}
