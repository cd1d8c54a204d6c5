"""No look-ahead: every registered feature is recomputed on truncated history and compared."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from aitrader.features import mtf, registry
from aitrader.features.bars import Bars
from aitrader.features.causality import check_causality, random_cuts
from aitrader.features.registry import Param, Params
from aitrader.features.spec import FeatureSpec

HOUR = 3600
# GARCH refits are the slow part: use a short window and several refits inside the sample.
FAST_PARAMS: dict[str, dict[str, bool | int | float | str]] = {
    "garch": {"window": 300, "refit_every": 400},
}


def _cuts(name: str, n: int, count: int = 12) -> list[int]:
    seed = zlib.crc32(name.encode())
    return [1, 5, *random_cuts(n, count, min_rows=10, seed=seed)]


@pytest.mark.parametrize("name", registry.names())
def test_feature_is_causal(name: str, btc_bars: Bars) -> None:
    spec = FeatureSpec(name=name, params=FAST_PARAMS.get(name, {}))
    violations = check_causality(btc_bars, spec, _cuts(name, len(btc_bars)), HOUR)
    assert not violations, "\n".join(map(str, violations[:5]))


@pytest.mark.parametrize("name", registry.names())
def test_feature_on_higher_timeframe_is_causal(name: str, btc_bars: Bars) -> None:
    spec = FeatureSpec(name=name, params=FAST_PARAMS.get(name, {}), timeframe="4h")
    if name == "garch":
        spec = FeatureSpec(name=name, params={"window": 100, "refit_every": 200}, timeframe="4h")
    violations = check_causality(btc_bars, spec, _cuts(name + "@4h", len(btc_bars), 8), HOUR)
    assert not violations, "\n".join(map(str, violations[:5]))


def _temporary(name: str, compute: registry.Computer) -> Iterator[str]:
    registry.register(
        registry.FeatureDef(
            name,
            "statistics",
            "deliberately broken feature (test only)",
            {"window": Param(5, lo=1)},
            lambda p: [name],
            lambda p: 0,
            compute,
        )
    )
    try:
        yield name
    finally:
        registry.unregister(name)


@pytest.fixture()
def leaking_feature() -> Iterator[str]:
    """Uses ``shift(-1)``: the value at bar t is the close of bar t + 1."""
    yield from _temporary(
        "leak_next_close",
        lambda b, p: [pd.Series(b.close).shift(-1).to_numpy()],
    )


@pytest.fixture()
def centred_window_feature() -> Iterator[str]:
    """A centred rolling mean: half of its window lies in the future."""
    yield from _temporary(
        "leak_centred_mean",
        lambda b, p: [
            pd.Series(b.close).rolling(p.integer("window"), center=True).mean().to_numpy()
        ],
    )


@pytest.fixture()
def whole_series_zscore() -> Iterator[str]:
    """Normalised with the mean and std of the whole series, future included."""
    yield from _temporary(
        "leak_global_zscore",
        lambda b, p: [(b.close - b.close.mean()) / b.close.std()],
    )


def test_harness_discovers_new_features(leaking_feature: str) -> None:
    assert leaking_feature in registry.names()


@pytest.mark.parametrize(
    "fixture", ["leaking_feature", "centred_window_feature", "whole_series_zscore"]
)
def test_harness_catches_leaks(
    fixture: str, request: pytest.FixtureRequest, btc_bars: Bars
) -> None:
    name = request.getfixturevalue(fixture)
    violations = check_causality(btc_bars, FeatureSpec(name=name), _cuts(name, len(btc_bars)))
    assert violations
    assert all(v.column == name for v in violations)
    assert "when the series ends at row" in str(violations[0])


def test_harness_catches_open_time_alignment_of_higher_timeframe(
    monkeypatch: pytest.MonkeyPatch, btc_bars: Bars
) -> None:
    """Exposing a 4h bar from its open time (before it closed) must be caught."""

    def by_open_time(base_ts: np.ndarray, base_s: int, htf: Bars, htf_s: int) -> np.ndarray:
        return np.searchsorted(htf.ts, base_ts, side="right").astype(np.int64) - 1

    monkeypatch.setattr(mtf, "visible_index", by_open_time)
    spec = FeatureSpec(name="rsi", timeframe="4h")
    assert check_causality(btc_bars, spec, _cuts("mtf-leak", len(btc_bars)), HOUR)


def test_params_are_resolved_from_registry() -> None:
    definition, params = registry.resolve("rsi", {})
    assert isinstance(params, Params)
    assert params.integer("period") == 14
    assert definition.warmup(params) == 14
