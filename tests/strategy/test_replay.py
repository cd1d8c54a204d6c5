"""Replaying plans over crafted bars: stop first, break-even after TP1, trailing, TP2, gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.config import CostsConfig
from aitrader.strategy.config import PlanConfig, SignalConfig
from aitrader.strategy.plans import (
    OUTCOMES,
    REPLAY_COLUMNS,
    PlanContext,
    TradePlan,
    build_plans,
    replay_plans,
)
from aitrader.strategy.signals import SignalInputs, generate

COSTS = CostsConfig()  # round trip 0.24 %
CFG = PlanConfig(tp1_fraction=0.5, trail_atr=2.0, validity_bars=3)
SIGNAL_BAR = (100.0, 100.5, 99.5, 100.0)


def bars(*rows: tuple[float, float, float, float]) -> pd.DataFrame:
    """The signal bar (close 100) followed by ``rows`` of (open, high, low, close)."""
    data = np.array([SIGNAL_BAR, *rows])
    index = pd.date_range("2024-01-01", periods=len(data), freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(data, columns=["open", "high", "low", "close"], index=index)
    return frame.assign(volume=1.0)


def plan(candles: pd.DataFrame, side: int = 1, status: str = "accepted") -> TradePlan:
    """Entry 100, stop 97 / 103, TP1 103 / 97, TP2 106 / 94, ATR 2 (at the signal bar)."""
    accepted = status == "accepted"
    return TradePlan(
        symbol="BTC/USD",
        timeframe="1h",
        time=candles.index[0],
        side=side,
        entry=100.0,
        stop=100.0 - 3 * side,
        tp1=100.0 + 3 * side,
        tp2=100.0 + 6 * side,
        atr=2.0,
        qty=1.0,
        leverage=1.0,
        risk_amount=3.0,
        validity_bars=3,
        p_win=0.6,
        expected_value=0.0,
        tp1_net=0.0,
        status="accepted" if accepted else "rejected",
        reason="crafted",
    )


def replay(
    *rows: tuple[float, float, float, float], side: int = 1, cfg: PlanConfig = CFG
) -> pd.Series:
    candles = bars(*rows)
    out = replay_plans(candles, [plan(candles, side)], cfg, COSTS)
    assert list(out.columns) == list(REPLAY_COLUMNS) and len(out) == 1
    return out.iloc[0]


ENTRY = (100.0, 100.5, 99.5, 100.2)  # fills at the open (100), nothing else touched


def test_stop_first_when_stop_and_tp1_share_a_bar() -> None:
    row = replay(ENTRY, (100.0, 104.0, 96.0, 100.0))
    assert row.outcome == "stop" and row.gross_return == pytest.approx(-0.03)
    assert row.r_multiple == pytest.approx(-1.0)
    assert row.net_return == pytest.approx(-0.03 - 0.0024)
    assert row.bars_held == 2


def test_only_the_stop_counts_on_the_entry_bar() -> None:
    row = replay((100.0, 104.0, 99.5, 102.5), (102.5, 102.8, 102.0, 102.5), ENTRY)
    assert row.outcome == "open"  # TP1 on the entry bar is not taken; TP1 never hit after
    assert row.gross_return == pytest.approx(0.002)


def test_tp1_then_break_even() -> None:
    row = replay(ENTRY, (100.0, 103.5, 99.5, 103.0), (101.0, 101.5, 99.8, 100.0))
    assert row.outcome == "tp1_break_even"
    assert row.gross_return == pytest.approx(0.5 * 0.03)  # half at TP1, half at entry
    assert row.r_multiple == pytest.approx(0.5)


def test_tp1_then_atr_trailing_stop() -> None:
    row = replay(
        ENTRY,
        (100.0, 103.5, 99.5, 103.0),  # TP1; trail 103.5 − 4 = 99.5 < break-even 100
        (103.0, 105.5, 102.5, 105.0),  # trail 105.5 − 4 = 101.5
        (103.0, 103.5, 101.0, 101.0),  # stopped at 101.5
    )
    assert row.outcome == "tp1_trailing"
    assert row.gross_return == pytest.approx(0.5 * 0.03 + 0.5 * 0.015)


def test_tp1_then_tp2() -> None:
    row = replay(ENTRY, (100.0, 103.5, 99.5, 103.0), (103.0, 106.5, 102.0, 106.0))
    assert row.outcome == "tp2" and row.gross_return == pytest.approx(0.5 * 0.03 + 0.5 * 0.06)


def test_stop_first_when_break_even_and_tp2_share_a_bar() -> None:
    row = replay(ENTRY, (100.0, 103.5, 99.5, 103.0), (103.0, 107.0, 99.0, 104.0))
    assert row.outcome == "tp1_break_even" and row.gross_return == pytest.approx(0.015)


def test_gap_through_the_stop_fills_at_the_open() -> None:
    row = replay(ENTRY, (95.0, 96.0, 94.0, 95.5))
    assert row.outcome == "stop" and row.gross_return == pytest.approx(-0.05)


def test_entry_expires_when_the_price_never_comes_back() -> None:
    row = replay(*[(101.0, 101.5, 100.5, 101.0)] * 4)
    assert row.outcome == "expired" and pd.isna(row.entry_time) and row.net_return == 0.0


def test_time_stop_exits_at_the_close() -> None:
    cfg = CFG.model_copy(update={"max_hold_bars": 2})
    row = replay(ENTRY, (100.2, 101.0, 99.5, 100.8), (100.8, 101.0, 100.0, 100.9), cfg=cfg)
    assert row.outcome == "time" and row.gross_return == pytest.approx(0.008)
    assert row.exit_time == pd.Timestamp("2024-01-01 02:00", tz="UTC")


def test_short_mirror_tp1_then_break_even() -> None:
    entry = (100.0, 100.5, 99.5, 99.8)
    row = replay(entry, (100.0, 100.5, 96.5, 97.0), (99.0, 100.2, 98.5, 100.0), side=-1)
    assert row.outcome == "tp1_break_even" and row.gross_return == pytest.approx(0.015)


def test_rejected_plans_are_not_replayed() -> None:
    candles = bars(ENTRY)
    out = replay_plans(candles, [plan(candles, status="rejected")], CFG, COSTS)
    assert out.empty and list(out.columns) == list(REPLAY_COLUMNS)


def test_history_replay_on_a_random_walk() -> None:
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2_000)))
    opens = np.r_[100.0, close[:-1]]
    index = pd.date_range("2024-01-01", periods=close.size, freq="1h", tz="UTC")
    high, low = np.maximum(opens, close) * 1.003, np.minimum(opens, close) / 1.003
    candles = pd.DataFrame(
        {"open": opens, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
    )
    inputs = SignalInputs(rng.uniform(0.3, 0.9, close.size), 0.03, 0.01)
    signals = generate(inputs, SignalConfig(), COSTS)
    plans = build_plans(candles, signals, PlanContext("X", "1h", 10_000.0, COSTS))
    out = replay_plans(candles, plans, PlanConfig(), COSTS)
    assert len(out) == sum(p.status == "accepted" for p in plans) > 100
    assert set(out["outcome"]) <= set(OUTCOMES)
    filled = out[out["outcome"] != "expired"]
    assert (filled["r_multiple"] >= -1.0 - 1e-9).sum() >= 0.8 * len(filled)  # gaps may exceed
    assert (filled["exit_time"] >= filled["entry_time"]).all()
