"""The model decision tuned on a calibration window: the gate and sides that made money there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.strategy.config import SignalConfig
from aitrader.strategy.edge import DecisionContext, tune_decision
from aitrader.strategy.signals import SymbolThresholds, resolve, with_tuned


def walk(n: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.008, n)))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": 1e6,
        },
        index=index,
    )


def probabilities(
    candles: pd.DataFrame, informed: bool, start: int = 2400
) -> tuple[pd.Series, pd.Series]:
    """3-class P(up) / P(down) on the last bars: knowing the next bar's move, or not at all."""
    nxt = candles["close"].shift(-1) / candles["close"] - 1.0
    rows = candles.index[start:-1]
    up_next = (nxt.loc[rows] > 0).to_numpy()
    p_up = np.where(up_next, 0.45, 0.15) if informed else np.full(rows.size, 0.3)
    return pd.Series(p_up, rows), pd.Series(0.6 - p_up, rows)


def test_an_informed_model_trades_both_sides_and_makes_money_on_the_window() -> None:
    candles = walk()
    up, down = probabilities(candles, informed=True)
    tuned = tune_decision(candles, up, down, DecisionContext(symbol="X/Y", timeframe="1h"))
    assert tuned.min_ev is not None and tuned.allow_long and tuned.allow_short
    assert tuned.net_return > 0.1 and tuned.trades >= 30 and 0 < tuned.coverage <= 1
    assert tuned.samples == up.size and tuned.notes == ()


def test_no_information_stays_flat_and_says_why() -> None:
    candles = walk()
    up, down = probabilities(candles, informed=False)
    tuned = tune_decision(candles, up, down, DecisionContext(symbol="X/Y", timeframe="1h"))
    assert tuned.min_ev is None and not tuned.trades_anything
    assert tuned.notes[0].startswith("long and short disabled")
    assert "to change" in tuned.notes[1]
    override = tuned.as_override()
    assert override.allow_long is False and override.allow_short is False


def test_a_side_the_config_forbids_stays_off() -> None:
    candles = walk()
    up, down = probabilities(candles, informed=True)
    context = DecisionContext(SignalConfig(allow_short=False), symbol="X/Y", timeframe="1h")
    tuned = tune_decision(candles, up, down, context)
    assert tuned.allow_long and not tuned.allow_short
    assert tuned.notes == ("short disabled: the configured signals do not allow it",)


def test_too_few_trades_is_no_decision() -> None:
    candles = walk()
    up, down = probabilities(candles, informed=True)
    context = DecisionContext(SignalConfig(min_trades=10_000), symbol="X/Y", timeframe="1h")
    assert tune_decision(candles, up, down, context).min_ev is None


def test_the_tuned_decision_is_a_symbol_timeframe_override() -> None:
    candles = walk()
    up, down = probabilities(candles, informed=True)
    tuned = tune_decision(candles, up, down, DecisionContext(symbol="X/Y", timeframe="1h"))
    config = with_tuned(SignalConfig(), "X/Y", "1h", tuned)
    params = resolve(config, "X/Y", "1h")
    assert (params.long_threshold, params.min_ev) == (0.55, pytest.approx(tuned.min_ev))
    assert resolve(config, "X/Y", "4h").min_ev == 0.0
    assert resolve(config, "X/Y", "4h").long_threshold == 0.55
    stored = SymbolThresholds(
        symbol="X/Y", timeframe="1h", min_trades=30, window=("a", "b"), tuned=tuned
    )
    again = SymbolThresholds.model_validate(stored.model_dump(mode="json"))
    assert again == stored and again.reached
    assert again.describe().startswith("X/Y:1h: long and short when EV net of costs >")
