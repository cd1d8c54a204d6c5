"""Feature sets: spec hash, warm-up reporting, errors, multi-timeframe alignment, scaling."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aitrader.errors import ConfigError, DataError
from aitrader.features import registry
from aitrader.features.featureset import build_features, column_names
from aitrader.features.registry import GROUPS
from aitrader.features.scaling import FeatureScaler
from aitrader.features.spec import DEFAULT_SET, FeaturesConfig, FeatureSpec, spec_hash


def test_default_set_has_60_columns_across_every_group() -> None:
    columns = [c for s in DEFAULT_SET for c in column_names(s)]
    assert len(columns) >= 60 and len(set(columns)) == len(columns)
    # every group except sentiment, which needs a headline store (opt-in)
    assert {registry.get(s.name).group for s in DEFAULT_SET} == set(GROUPS) - {"sentiment"}
    assert any(s.timeframe for s in DEFAULT_SET)


def test_spec_hash_is_stable_and_sensitive() -> None:
    plain = [FeatureSpec(name="rsi"), FeatureSpec(name="bbands", params={"nbdev": 2})]
    spelled = [
        FeatureSpec(name="rsi", params={"period": 14}),
        FeatureSpec(name="bbands", params={"relative": False, "nbdev": 2.0, "period": 20}),
    ]
    assert spec_hash(plain) == spec_hash(spelled)
    canonical = b'{"features":[{"name":"rsi","params":{"period":14},"timeframe":null}],"version":1}'
    assert spec_hash([FeatureSpec(name="rsi")]) == hashlib.sha256(canonical).hexdigest()
    changed = [
        [FeatureSpec(name="rsi", params={"period": 7})],
        [FeatureSpec(name="rsi", timeframe="4h")],
        list(reversed(plain)),
    ]
    hashes = {spec_hash(s) for s in changed} | {spec_hash(plain)}
    assert len(hashes) == 4
    assert FeaturesConfig().spec_hash() == spec_hash(list(DEFAULT_SET))


def test_warmup_rows_are_dropped_and_reported(btc_1h: pd.DataFrame) -> None:
    specs = [FeatureSpec(name="sma", params={"period": 50}), FeatureSpec(name="rsi")]
    matrix = build_features(btc_1h, specs)
    assert matrix.dropped_warmup == 49
    assert len(matrix.frame) == len(btc_1h) - 49
    assert matrix.frame.index[0] == btc_1h.index[49]
    assert matrix.columns == ["sma_50", "rsi_14"]
    assert not matrix.frame.isna().any().any()
    assert matrix.warmup == {"sma(period=50)": 49, "rsi()": 14}


def test_default_set_builds_without_nan(btc_1h: pd.DataFrame) -> None:
    calls: list[tuple[int, int]] = []
    matrix = build_features(btc_1h, FeaturesConfig(), lambda d, t: calls.append((d, t)))
    assert matrix.dropped_warmup == 1000  # the GARCH estimation window
    assert matrix.frame.shape == (len(btc_1h) - 1000, len(matrix.columns))
    assert matrix.nan_rows == 0 and np.isfinite(matrix.frame.to_numpy()).all()
    assert calls[-1] == (len(DEFAULT_SET), len(DEFAULT_SET))


def test_unknown_feature_and_bad_params_raise_config_error(btc_1h: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"unknown feature 'nope'.*available features: .*rsi"):
        build_features(btc_1h, [FeatureSpec(name="nope")])
    with pytest.raises(ConfigError, match=r"'rsi'.*unknown parameter\(s\) length.*period"):
        build_features(btc_1h, [FeatureSpec(name="rsi", params={"length": 3})])
    with pytest.raises(ConfigError, match=r"'period': 1 is out of range"):
        build_features(btc_1h, [FeatureSpec(name="rsi", params={"period": 1})])
    with pytest.raises(ConfigError, match=r"'period': 'x' is not a int"):
        build_features(btc_1h, [FeatureSpec(name="rsi", params={"period": "x"})])
    with pytest.raises(ConfigError, match="fast must be < slow"):
        build_features(btc_1h, [FeatureSpec(name="macd", params={"fast": 30})])
    with pytest.raises(ConfigError, match="duplicate feature column 'rsi_14'"):
        build_features(btc_1h, [FeatureSpec(name="rsi"), FeatureSpec(name="rsi")])
    with pytest.raises(ConfigError, match="whole multiple"):
        build_features(btc_1h, [FeatureSpec(name="rsi", timeframe="90m")], timeframe="1h")


def test_features_config_validates_at_the_edge() -> None:
    with pytest.raises(ValidationError, match="unknown feature 'nope'"):
        FeaturesConfig.model_validate({"extra": [{"name": "nope"}]})
    with pytest.raises(ValidationError, match="empty feature set"):
        FeaturesConfig(preset="none")
    with pytest.raises(ValidationError, match="not a timeframe"):
        FeatureSpec(name="rsi", timeframe="4 hours")
    with pytest.raises(ValidationError):
        FeaturesConfig.model_validate({"preset": "default", "colour": "red"})
    cfg = FeaturesConfig.model_validate({"preset": "none", "extra": [{"name": "rsi"}]})
    assert cfg.specs() == (FeatureSpec(name="rsi"),)


def test_series_too_short_is_a_data_error(btc_1h: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"too short.*sma"):
        build_features(btc_1h.iloc[:100], [FeatureSpec(name="sma", params={"period": 200})])


@pytest.fixture()
def htf_close() -> Iterator[str]:
    """A feature that returns each bar's close, to see exactly which 4h bar is visible."""
    registry.register(
        registry.FeatureDef(
            "test_close",
            "trend",
            "close (test only)",
            {},
            lambda p: ["close"],
            lambda p: 0,
            lambda b, p: [b.close.copy()],
        )
    )
    yield "test_close"
    registry.unregister("test_close")


def _hourly(hours: int) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC", name="timestamp")
    close = 100.0 + np.arange(hours, dtype=float)
    return pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0},
        index=index,
    )


def test_higher_timeframe_only_sees_closed_bars(htf_close: str) -> None:
    candles = _hourly(12)
    spec = [FeatureSpec(name=htf_close, timeframe="4h"), FeatureSpec(name="calendar")]
    matrix = build_features(candles, spec, timeframe="1h")
    # the 4h bar 00:00-04:00 closes with the 1h bar opening at 03:00: first visible there
    assert matrix.dropped_warmup == 3
    seen = matrix.frame["close__4h"]
    assert seen.index[0] == pd.Timestamp("2024-01-01 03:00", tz="UTC")
    np.testing.assert_array_equal(seen.to_numpy(), [103.0] * 4 + [107.0] * 4 + [111.0])


def test_higher_timeframe_with_a_missing_bar(htf_close: str) -> None:
    candles = _hourly(12).drop(pd.Timestamp("2024-01-01 03:00", tz="UTC"))
    spec = [FeatureSpec(name=htf_close, timeframe="x4")]
    matrix = build_features(candles, spec, timeframe="1h")
    seen = matrix.frame["close__x4"]
    # without the 03:00 bar the first 4h bar is known only once the 04:00 bar has closed
    assert seen.index[0] == pd.Timestamp("2024-01-01 04:00", tz="UTC")
    assert seen.iloc[0] == 102.0


def test_scaler_is_fitted_on_the_training_window_only() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(5, 2, 1000), "b": np.ones(1000)})
    train, test = frame.iloc[:600], frame.iloc[600:]
    scaler = FeatureScaler().fit(train)
    assert scaler.center_[0] == pytest.approx(train["a"].mean())
    assert scaler.scale_[0] == pytest.approx(train["a"].std(ddof=0))
    assert scaler.scale_[1] == 1.0  # constant column: centred only
    out = scaler.transform(test)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"]
    expected = (test["a"] - train["a"].mean()) / train["a"].std(ddof=0)
    np.testing.assert_allclose(out["a"], expected)
    back = scaler.inverse_transform(out)
    assert isinstance(back, pd.DataFrame)
    np.testing.assert_allclose(back.to_numpy(), test.to_numpy())
    robust = FeatureScaler("robust", clip=3.0).fit_transform(frame.to_numpy())
    assert isinstance(robust, np.ndarray) and np.abs(robust).max() <= 3.0
    with pytest.raises(DataError, match="not fitted"):
        FeatureScaler().transform(frame)
    with pytest.raises(ConfigError, match="method"):
        FeatureScaler("minmax").fit(frame)  # type: ignore[arg-type]
