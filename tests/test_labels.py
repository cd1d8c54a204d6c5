"""Labels: hand-computed values on tiny frames, triple-barrier paths, meta-labels, config."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import talib

from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.errors import ConfigError, DataError
from aitrader.labels.build import (
    Labels,
    binary_labels,
    direction_labels,
    forward_returns,
    make_labels,
    meta_labels,
    triple_barrier,
)
from aitrader.labels.config import LabelConfig

ZERO_COSTS = CostsConfig(taker_fee=0.0, maker_fee=0.0, slippage_bps=0.0)


def hourly(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")


def from_closes(closes: list[float]) -> pd.DataFrame:
    """Candles whose open is the previous close and whose wicks are the body."""
    close = np.asarray(closes, dtype="float64")
    open_ = np.concatenate([close[:1], close[:-1]])
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": np.ones(close.size),
        },
        index=hourly(close.size),
    )


def from_bars(bars: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    """Candles from explicit (open, high, low, close) rows."""
    frame = pd.DataFrame(bars, columns=["open", "high", "low", "close"], index=hourly(len(bars)))
    frame["volume"] = 1.0
    return frame


def const_atr(frame: pd.DataFrame, value: float = 1.0) -> pd.Series:
    return pd.Series(value, index=frame.index, dtype="float64")


# --- direction, binary, forward returns ---------------------------------------------------------

# 100 → 100.5 is +0.5 % (> 0.24 % band: up); → 100.6 is +0.0995 % (inside: neutral);
# → 100.3 is −0.298 % (down); → 100.3 is 0 % (neutral); the last bar has no next bar (NaN).
CLOSES = [100.0, 100.5, 100.6, 100.3, 100.3]


def test_direction_hand_computed_with_default_band() -> None:
    labels = direction_labels(from_closes(CLOSES))
    np.testing.assert_array_equal(labels.values.to_numpy(), [1.0, 0.0, -1.0, 0.0, np.nan])
    assert labels.horizon == 1
    assert labels.kind == "direction3"
    index = hourly(5)
    assert list(labels.end_times.iloc[:4]) == list(index[1:])
    assert pd.isna(labels.end_times.iloc[4])


def test_default_neutral_band_is_round_trip_cost() -> None:
    assert CostsConfig().round_trip == pytest.approx(0.0024)
    band_from_name = float(direction_labels(from_closes(CLOSES)).name.split("band")[1])
    assert band_from_name == pytest.approx(CostsConfig().round_trip)
    # +0.20 % sits inside the default 0.24 % band but beats a 0.10 % band.
    frame = from_closes([100.0, 100.2])
    assert direction_labels(frame).values.iloc[0] == 0.0
    assert direction_labels(frame, neutral_band=0.001).values.iloc[0] == 1.0
    cheap = CostsConfig(taker_fee=0.0005, slippage_bps=0.0)  # round trip 0.10 %
    assert direction_labels(frame, costs=cheap).values.iloc[0] == 1.0


def test_direction_band_from_costs_and_explicit_band() -> None:
    frame = from_closes(CLOSES)
    zero = direction_labels(frame, costs=ZERO_COSTS).values.to_numpy()
    np.testing.assert_array_equal(zero, [1.0, 1.0, -1.0, 0.0, np.nan])  # flat stays neutral
    wide = direction_labels(frame, neutral_band=0.004).values.to_numpy()
    np.testing.assert_array_equal(wide, [1.0, 0.0, 0.0, 0.0, np.nan])


def test_direction_horizon_two_and_tail() -> None:
    labels = direction_labels(from_closes(CLOSES), horizon=2)
    # 100 → 100.6 (+0.6 %), 100.5 → 100.3 (−0.199 %), 100.6 → 100.3 (−0.298 %)
    np.testing.assert_array_equal(labels.values.to_numpy(), [1.0, 0.0, -1.0, np.nan, np.nan])
    assert labels.horizon == 2
    assert list(labels.end_times.iloc[:3]) == list(hourly(5)[2:])
    assert labels.end_times.iloc[3:].isna().all()


def test_binary_counts_unchanged_as_not_up() -> None:
    labels = binary_labels(from_closes(CLOSES))
    np.testing.assert_array_equal(labels.values.to_numpy(), [1.0, 1.0, 0.0, 0.0, np.nan])
    assert labels.kind == "binary"
    assert labels.horizon == 1


def test_forward_returns_simple_and_log() -> None:
    frame = from_closes(CLOSES)
    simple = forward_returns(frame, horizon=2)
    expected = [100.6 / 100 - 1, 100.3 / 100.5 - 1, 100.3 / 100.6 - 1, np.nan, np.nan]
    np.testing.assert_allclose(simple.values.to_numpy(), expected, rtol=1e-12)
    log = forward_returns(frame, horizon=2, log=True)
    np.testing.assert_allclose(log.values.to_numpy(), np.log1p(expected), rtol=1e-12)
    assert (simple.kind, log.kind) == ("forward_return", "log_forward_return")
    assert simple.end_times.equals(log.end_times)


def test_labels_never_zero_filled_when_window_runs_past_data() -> None:
    frame = from_closes([100.0, 101.0, 102.0])
    for horizon in (3, 7):
        labels = direction_labels(frame, horizon=horizon)
        assert labels.values.isna().all()
        assert labels.end_times.isna().all()


def test_labels_helpers() -> None:
    labels = direction_labels(from_closes(CLOSES), horizon=2)
    assert labels.mask.tolist() == [True, True, True, False, False]
    kept = labels.dropna()
    assert len(kept.values) == 3 and kept.horizon == 2
    assert kept.end_times.notna().all()
    assert labels.target is labels.values
    with pytest.raises(DataError, match="end_times"):
        Labels(labels.values, 2, labels.end_times.iloc[:3], "x", "direction3")
    backwards = pd.Series(labels.values.index, index=labels.values.index)
    with pytest.raises(DataError, match="not after"):
        Labels(labels.values, 2, backwards, "x", "direction3")


# --- triple barrier -----------------------------------------------------------------------------

ENTRY = (100.0, 100.0, 100.0, 100.0)
QUIET = (100.0, 100.5, 99.5, 100.0)


def barrier_row(
    bars: list[tuple[float, float, float, float]], side: int = 1, max_bars: int = 3
) -> pd.Series:
    """Row 0 of a long/short triple barrier with ATR 1, take profit 2 ATR, stop 1 ATR."""
    frame = from_bars([ENTRY, *bars])
    labels = triple_barrier(
        frame, take_profit=2.0, stop_loss=1.0, max_bars=max_bars, atr=const_atr(frame), side=side
    )
    assert labels.values.iloc[1:]["barrier"].isna().all()  # later rows lack a full window
    return labels.values.iloc[0]


def test_triple_barrier_upper_hit() -> None:
    row = barrier_row([QUIET, (100.0, 102.5, 99.8, 102.2), QUIET])
    assert row["barrier"] == 1.0
    assert row["bars_held"] == 2
    assert row["hit_time"] == hourly(4)[2]
    assert row["ret"] == pytest.approx(0.02)  # exits at the take-profit price 102


def test_triple_barrier_lower_hit() -> None:
    row = barrier_row([QUIET, QUIET, (100.0, 100.2, 98.5, 99.5)])
    assert (row["barrier"], row["bars_held"]) == (-1.0, 3)
    assert row["ret"] == pytest.approx(-0.01)


def test_triple_barrier_both_in_one_bar_takes_stop_first() -> None:
    row = barrier_row([(100.0, 103.0, 98.0, 102.5), QUIET, QUIET])
    assert (row["barrier"], row["bars_held"]) == (-1.0, 1)
    assert row["ret"] == pytest.approx(-0.01)


def test_triple_barrier_gaps_at_the_open() -> None:
    gap_down = barrier_row([(98.0, 98.5, 97.0, 98.2), QUIET, QUIET])
    assert gap_down["barrier"] == -1.0
    assert gap_down["ret"] == pytest.approx(-0.02)  # the stop slips to the open, 98
    gap_up = barrier_row([(103.0, 104.0, 98.5, 100.0), QUIET, QUIET])
    assert gap_up["barrier"] == 1.0  # the open is above the take-profit: hit before the low
    assert gap_up["ret"] == pytest.approx(0.02)  # no gap windfall: filled at 102


def test_triple_barrier_vertical() -> None:
    row = barrier_row([QUIET, (100.0, 101.0, 99.6, 100.8), (100.8, 101.5, 100.3, 101.1)])
    assert (row["barrier"], row["bars_held"]) == (0.0, 3)
    assert row["hit_time"] == hourly(4)[3]
    assert row["ret"] == pytest.approx(0.011)


def test_triple_barrier_short_side() -> None:
    # Short from 100: take profit at 98, stop at 101.
    both = barrier_row([(100.0, 101.5, 97.0, 99.0), QUIET, QUIET], side=-1)
    assert (both["barrier"], both["ret"]) == (-1.0, pytest.approx(-0.01))
    win = barrier_row([QUIET, (100.0, 100.5, 97.5, 97.8), QUIET], side=-1)
    assert (win["barrier"], win["bars_held"], win["ret"]) == (1.0, 2, pytest.approx(0.02))


def test_triple_barrier_end_times_horizon_and_missing_atr() -> None:
    frame = from_bars([ENTRY, QUIET, (100.0, 102.5, 99.8, 102.2), QUIET, QUIET, QUIET])
    atr = const_atr(frame)
    atr.iloc[1] = np.nan  # still warming up: no barrier width, no label
    labels = triple_barrier(frame, take_profit=2.0, stop_loss=1.0, max_bars=3, atr=atr)
    assert labels.horizon == 3
    assert labels.end_times.equals(labels.values["hit_time"].rename("end_time"))
    assert labels.end_times.iloc[0] == frame.index[2]
    assert labels.mask.tolist() == [True, False, True, False, False, False]
    assert labels.target.name == "barrier"


def test_triple_barrier_talib_atr_matches_explicit() -> None:
    frame = load_sample("BTC-USD-1h").iloc[:500]
    atr = talib.ATR(frame["high"], frame["low"], frame["close"], timeperiod=10)
    computed = triple_barrier(frame, max_bars=12, atr_period=10)
    given = triple_barrier(frame, max_bars=12, atr=atr)
    pd.testing.assert_frame_equal(computed.values, given.values)
    assert computed.values["barrier"].iloc[:10].isna().all()  # ATR warm-up
    assert computed.values["barrier"].iloc[10:-12].notna().all()


def test_triple_barrier_side_series_skips_zero() -> None:
    frame = from_bars([ENTRY, QUIET, QUIET, QUIET, QUIET])
    sides = pd.Series([1, 0, -1, 0, 0], index=frame.index)
    labels = triple_barrier(frame, max_bars=2, atr=const_atr(frame), side=sides)
    assert labels.mask.tolist() == [True, False, True, False, False]
    assert labels.values["side"].tolist() == [1.0, 0.0, -1.0, 0.0, 0.0]
    assert "signals" in labels.name


# --- meta-labels --------------------------------------------------------------------------------


def test_meta_labels_from_forward_returns_net_of_costs() -> None:
    frame = from_closes([100.0, 100.5, 100.1, 100.3, 100.0])
    signals = pd.Series([1, -1, 1, 0, 1], index=frame.index)
    outcome = forward_returns(frame)
    meta = meta_labels(signals, outcome)
    # long +0.5 % > 0.24 %: won; short over −0.398 % earns +0.398 %: won;
    # long +0.1998 % is a gross gain but a net loss: 0; no signal: NaN; no next bar: NaN.
    np.testing.assert_array_equal(meta.values.to_numpy(), [1.0, 1.0, 0.0, np.nan, np.nan])
    assert meta.horizon == 1 and meta.kind == "meta"
    assert list(meta.end_times.iloc[:3]) == list(frame.index[1:4])
    assert meta.end_times.iloc[3:].isna().all()
    free = meta_labels(signals, outcome, ZERO_COSTS).values.to_numpy()
    np.testing.assert_array_equal(free, [1.0, 1.0, 1.0, np.nan, np.nan])


def test_meta_labels_from_triple_barrier() -> None:
    frame = from_bars(
        [
            ENTRY,
            (100.0, 100.5, 99.8, 100.1),
            (100.1, 102.5, 100.0, 102.2),
            (102.2, 102.4, 102.0, 102.3),
            (102.3, 102.5, 102.1, 102.4),
        ]
    )
    signals = pd.Series([1, -1, 1, 1, 0], index=frame.index)
    outcome = triple_barrier(
        frame, take_profit=2.0, stop_loss=1.0, max_bars=2, atr=const_atr(frame), side=signals
    )
    # t0 long hits 102 (+2 %): won. t1 short from 100.1 is stopped at 101.1: lost.
    # t2 long ends at the vertical barrier +0.196 %: gross gain, net loss. t3: no full window.
    np.testing.assert_array_equal(outcome.values["barrier"].to_numpy()[:3], [1.0, -1.0, 0.0])
    meta = meta_labels(signals, outcome)
    np.testing.assert_array_equal(meta.values.to_numpy(), [1.0, 0.0, 0.0, np.nan, np.nan])
    assert meta.end_times.iloc[0] == frame.index[2]
    assert meta.end_times.iloc[1] == frame.index[2]
    assert meta.end_times.iloc[2] == frame.index[4]


def test_meta_labels_reject_mismatched_outcomes() -> None:
    frame = from_closes(CLOSES)
    signals = pd.Series([1, -1, 0, 0, 0], index=frame.index)
    long_only = triple_barrier(frame, max_bars=1, atr=const_atr(frame))
    with pytest.raises(ConfigError, match="side=signals"):
        meta_labels(signals, long_only)
    with pytest.raises(ConfigError, match="triple_barrier"):
        meta_labels(signals, direction_labels(frame))
    with pytest.raises(ConfigError, match="forward_return"):
        meta_labels(signals, forward_returns(frame, log=True))
    with pytest.raises(DataError, match="allowed: -1"):
        meta_labels(pd.Series([1, 2, 0, 0, 0], index=frame.index), forward_returns(frame))
    with pytest.raises(DataError, match="index"):
        meta_labels(signals.iloc[:3], forward_returns(frame))


# --- config, dispatcher, errors -----------------------------------------------------------------


def test_make_labels_dispatches_each_kind() -> None:
    frame = load_sample("BTC-USD-1h").iloc[:300]
    cases: list[tuple[LabelConfig, Labels]] = [
        (LabelConfig(), direction_labels(frame)),
        (LabelConfig(kind="binary", horizon=3), binary_labels(frame, 3)),
        (LabelConfig(kind="forward_return", log_returns=True), forward_returns(frame, log=True)),
        (
            LabelConfig(kind="triple_barrier", horizon=6, stop_loss=1.0, side=-1),
            triple_barrier(frame, max_bars=6, stop_loss=1.0, side=-1),
        ),
    ]
    for config, expected in cases:
        got = make_labels(frame, config, CostsConfig())
        assert (got.name, got.horizon, got.kind) == (expected.name, expected.horizon, expected.kind)
        assert got.end_times.equals(expected.end_times)
        assert got.values.equals(expected.values)
    wide = make_labels(frame, LabelConfig(neutral_band=0.01))
    assert wide.values.equals(direction_labels(frame, neutral_band=0.01).values)


def test_label_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"kind = 'up'.*direction3"):
        LabelConfig.from_mapping({"kind": "up"})
    with pytest.raises(ConfigError, match="horizon = 0"):
        LabelConfig.from_mapping({"horizon": 0})
    with pytest.raises(ConfigError, match="band_width"):
        LabelConfig.from_mapping({"band_width": 0.1})
    with pytest.raises(ConfigError, match=r"neutral_band = 0.01: .*only to kind 'direction3'"):
        LabelConfig.from_mapping({"kind": "binary", "neutral_band": 0.01})
    with pytest.raises(ConfigError, match=r"take_profit = 3: .*only to kind 'triple_barrier'"):
        LabelConfig.from_mapping({"kind": "direction3", "take_profit": 3})
    config = LabelConfig.from_mapping({"kind": "triple_barrier", "horizon": 12})
    assert (config.horizon, config.take_profit, config.stop_loss, config.atr_period) == (
        12,
        2.0,
        2.0,
        14,
    )
    with pytest.raises(ValueError, match="frozen"):
        config.horizon = 3  # type: ignore[misc]


def test_bad_parameters_raise_clear_errors() -> None:
    frame = from_closes(CLOSES)
    with pytest.raises(ConfigError, match=r"horizon must be an integer ≥ 1, got 0"):
        direction_labels(frame, horizon=0)
    with pytest.raises(ConfigError, match="neutral_band"):
        direction_labels(frame, neutral_band=-0.01)
    with pytest.raises(ConfigError, match="take_profit"):
        triple_barrier(frame, take_profit=0.0)
    with pytest.raises(ConfigError, match="max_bars"):
        triple_barrier(frame, max_bars=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="atr_period"):
        triple_barrier(frame, atr_period=0)
    with pytest.raises(ConfigError, match=r"side must be 1 \(long\), -1 \(short\)"):
        triple_barrier(frame, side=2)
    with pytest.raises(DataError, match="negative"):
        triple_barrier(frame, atr=const_atr(frame, -1.0))


def test_bad_candles_raise_data_error() -> None:
    frame = from_closes(CLOSES)
    with pytest.raises(DataError, match="DatetimeIndex"):
        direction_labels(frame.reset_index(drop=True))
    with pytest.raises(DataError, match="increasing"):
        direction_labels(frame.iloc[::-1])
    with pytest.raises(DataError, match="lack column"):
        triple_barrier(frame.drop(columns="high"))
    broken = frame.copy()
    broken.iloc[2, broken.columns.get_loc("close")] = np.nan
    with pytest.raises(DataError, match=r"row 3 .*'close'"):
        forward_returns(broken)


# --- real data ----------------------------------------------------------------------------------


def test_real_data_class_balance_and_speed() -> None:
    candles = load_sample("BTC-USD-1h")
    triple_barrier(candles.iloc[:100], max_bars=5)  # compile / load the numba cache first
    started = time.perf_counter()
    direction = direction_labels(candles)
    binary = binary_labels(candles)
    barrier = triple_barrier(candles, max_bars=24)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0

    shares = direction.values.value_counts(normalize=True)
    assert set(shares.index) == {-1.0, 0.0, 1.0}
    assert all(0.15 < share < 0.6 for share in shares)  # ≈ 28 % down, 42 % flat, 30 % up
    assert direction.values.isna().sum() == 1
    assert 0.45 < binary.values.mean() < 0.55

    hits = barrier.values["barrier"].value_counts(normalize=True)
    assert 0.3 < hits[1.0] < 0.6 and 0.3 < hits[-1.0] < 0.6 and 0.02 < hits[0.0] < 0.3
    assert barrier.values["barrier"].isna().sum() == 14 + 24  # ATR warm-up + tail
    held = barrier.values["bars_held"].dropna()
    assert held.between(1, 24).all()
    vertical = barrier.values["barrier"] == 0
    assert (barrier.values.loc[vertical, "bars_held"] == 24).all()
    assert not math.isnan(barrier.values["ret"].mean())
