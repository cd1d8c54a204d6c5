"""``modes.regime.source: hmm``: the volatility tier of the regime labels from the HMM agent's
forward-filtered probabilities — causal (a label never changes when later bars arrive), the same
bar by bar as over the whole series, the high-volatility overrides applied in a planted
high-volatility stretch, a clear error when the HMM cannot be fitted, and the mode per tier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import regime_walk
from pydantic import ValidationError

from aitrader.config import CostsConfig
from aitrader.errors import ConfigError
from aitrader.strategy.config import ModesConfig, RegimeConfig, SignalConfig, SignalOverride
from aitrader.strategy.modes import candles_for_modes, select_mode
from aitrader.strategy.regimes import RegimeSource, regime_source
from aitrader.strategy.signals import SignalInputs, generate

HMM = RegimeConfig(source="hmm", hmm_states=2, hmm_window=24, hmm_train_bars=2400)
BLOCK = 300  # bars per volatility block: calm, wild, calm, wild …
TRAIN = 2400


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return regime_walk(TRAIN + 3 * BLOCK, seed=3, block=BLOCK)


@pytest.fixture(scope="module")
def source(candles: pd.DataFrame) -> RegimeSource:
    """An HMM fitted on the training bars only (no bundle attached)."""
    return regime_source(HMM, None, candles.iloc[:TRAIN])


def test_a_label_never_changes_when_later_bars_arrive(
    candles: pd.DataFrame, source: RegimeSource
) -> None:
    full = source.labels(candles)
    for cut in (TRAIN + 10, TRAIN + BLOCK + 7, len(candles) - 40):
        prefix = source.labels(candles.iloc[:cut])
        assert prefix.equals(full.iloc[:cut])


def test_bar_by_bar_equals_the_whole_series(candles: pd.DataFrame, source: RegimeSource) -> None:
    full = source.labels(candles)
    bars = range(TRAIN + BLOCK - 20, TRAIN + BLOCK + 60)  # across a calm → wild switch
    per_bar = [source.last(candles.iloc[: t + 1]) for t in bars]
    assert per_bar == full.iloc[list(bars)].tolist()
    assert {label.rpartition("_")[2] for label in per_bar} == {"low", "high"}


def test_the_high_volatility_override_applies_in_the_planted_stretch(
    candles: pd.DataFrame, source: RegimeSource
) -> None:
    """Longs everywhere (P(up) 0.7) except where the label's tier is high: the override forbids
    them; the HMM sees the wild blocks within a few bars of their start."""
    no_longs = SignalOverride(allow_long=False)
    config = SignalConfig(
        min_ev=-1.0, regime_overrides={"trend_high": no_longs, "range_high": no_longs}
    )
    labels = source.labels(candles).to_numpy()
    n = len(candles)
    inputs = SignalInputs(np.full(n, 0.7), 0.01, 0.01, None, labels)
    side = generate(inputs, config, CostsConfig()).side
    block = (np.arange(n) // BLOCK) % 2  # 1: the wild blocks
    settled = (np.arange(n) % BLOCK) >= 10  # ten bars after each switch
    test = (np.arange(n) >= TRAIN) & settled
    assert np.mean(side[test & (block == 1)] == 0) > 0.95
    assert np.mean(side[test & (block == 0)] == 1) > 0.95


def test_too_few_bars_for_the_hmm_is_a_config_error(candles: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"modes\.regime\.source is 'hmm'.*only 120 bars"):
        regime_source(HMM, None, candles.iloc[:120])
    with pytest.raises(ConfigError, match=r"modes\.regime\.source is 'hmm'"):
        regime_source(HMM, None, None)


def test_rules_stay_the_default() -> None:
    assert regime_source(RegimeConfig()).hmm is None


def test_the_volatility_tier_picks_the_mapped_mode(candles: pd.DataFrame) -> None:
    config = ModesConfig(regime=HMM.model_copy(update={"mode_by_tier": {"high": "intraday"}}))
    frames = candles_for_modes(candles, "1h", config)
    costs = CostsConfig()
    mapped = select_mode(frames, config, costs, regime="range_high")
    assert (mapped.mode, mapped.timeframe) == ("intraday", "5m")
    assert "mode_by_tier" in mapped.reason
    scored = select_mode(frames, config, costs, regime="range_low")
    assert scored.reason.startswith("highest score")


def test_an_unknown_mapped_mode_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"regime\.mode_by_tier\.high: mode 'hodl'"):
        ModesConfig(regime=RegimeConfig(mode_by_tier={"high": "hodl"}))
