"""Cross-checks against the `ta` package, scipy/numpy and hand-computed reference values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta
from scipy import stats

from aitrader.features import (
    calendar,
    indicators,
    levels,
    microstructure,
    statistics,
    volatility,
    volume,
)

BURN = 400  # rows after which differently seeded EMAs agree to machine precision


@pytest.fixture(scope="module")
def ohlcv(btc_1h: pd.DataFrame) -> dict[str, pd.Series]:
    return {c: btc_1h[c].reset_index(drop=True) for c in btc_1h.columns}


def close_enough(ours: np.ndarray, ref: pd.Series | np.ndarray, rtol: float = 1e-9) -> None:
    expected = np.asarray(ref, dtype=float)
    np.testing.assert_allclose(ours[BURN:], expected[BURN:], rtol=rtol, atol=1e-9)


def test_moving_averages_and_macd_match_ta(ohlcv: dict[str, pd.Series]) -> None:
    c = ohlcv["close"]
    x = c.to_numpy()
    close_enough(indicators.sma(x, 20), ta.trend.sma_indicator(c, 20))
    close_enough(indicators.ema(x, 20), ta.trend.ema_indicator(c, 20))
    line, signal, hist = indicators.macd(x, 12, 26, 9)
    ref = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
    close_enough(line, ref.macd())
    close_enough(signal, ref.macd_signal())
    close_enough(hist, ref.macd_diff())


def test_momentum_matches_ta(ohlcv: dict[str, pd.Series]) -> None:
    h, lo, c = ohlcv["high"], ohlcv["low"], ohlcv["close"]
    close_enough(indicators.rsi(c.to_numpy(), 14), ta.momentum.rsi(c, 14))
    close_enough(indicators.roc(c.to_numpy(), 10), ta.momentum.roc(c, 10))
    close_enough(
        indicators.willr(h.to_numpy(), lo.to_numpy(), c.to_numpy(), 14),
        ta.momentum.williams_r(h, lo, c, 14),
    )
    fast_k, fast_d = indicators.stoch(h.to_numpy(), lo.to_numpy(), c.to_numpy(), 14, 1, 3)
    ref = ta.momentum.StochasticOscillator(h, lo, c, window=14, smooth_window=3)
    close_enough(fast_k, ref.stoch())
    close_enough(fast_d, ref.stoch_signal())


def test_adx_matches_ta(ohlcv: dict[str, pd.Series]) -> None:
    h, lo, c = ohlcv["high"], ohlcv["low"], ohlcv["close"]
    adx, plus, minus = indicators.adx(h.to_numpy(), lo.to_numpy(), c.to_numpy(), 14)
    ref = ta.trend.ADXIndicator(h, lo, c, 14)
    close_enough(plus, ref.adx_pos(), rtol=1e-6)
    close_enough(minus, ref.adx_neg(), rtol=1e-6)
    close_enough(adx, ref.adx(), rtol=1e-6)


def test_bands_and_atr_match_ta(ohlcv: dict[str, pd.Series]) -> None:
    h, lo, c = ohlcv["high"], ohlcv["low"], ohlcv["close"]
    upper, middle, lower = indicators.bbands(c.to_numpy(), 20, 2.0)
    pctb = indicators.percent_b(c.to_numpy(), upper, lower)
    width = indicators.bandwidth(upper, middle, lower)
    ref = ta.volatility.BollingerBands(c, 20, 2)
    close_enough(upper, ref.bollinger_hband())
    close_enough(lower, ref.bollinger_lband())
    close_enough(pctb, ref.bollinger_pband())
    close_enough(width, ref.bollinger_wband() / 100.0)
    close_enough(
        indicators.atr(h.to_numpy(), lo.to_numpy(), c.to_numpy(), 14),
        ta.volatility.average_true_range(h, lo, c, 14),
    )
    kc_upper, kc_middle, kc_lower = indicators.keltner(
        h.to_numpy(), lo.to_numpy(), c.to_numpy(), 20, 10, 2.0
    )
    kc = ta.volatility.KeltnerChannel(h, lo, c, 20, 10, original_version=False, multiplier=2)
    close_enough(kc_upper, kc.keltner_channel_hband())
    close_enough(kc_middle, kc.keltner_channel_mband())
    close_enough(kc_lower, kc.keltner_channel_lband())


def test_volume_indicators_match_ta(ohlcv: dict[str, pd.Series]) -> None:
    h, lo, c, v = ohlcv["high"], ohlcv["low"], ohlcv["close"], ohlcv["volume"]
    close_enough(
        volume.rolling_vwap(h.to_numpy(), lo.to_numpy(), c.to_numpy(), v.to_numpy(), 14),
        ta.volume.volume_weighted_average_price(h, lo, c, v, 14),
    )
    ours = volume.obv(c.to_numpy(), v.to_numpy())
    ref = ta.volume.on_balance_volume(c, v).to_numpy()
    moved = np.diff(c.to_numpy()) != 0  # `ta` counts an unchanged close as up; classic OBV as 0
    np.testing.assert_allclose(np.diff(ours)[moved], np.diff(ref)[moved], rtol=1e-12)
    assert (np.diff(ours)[~moved] == 0).all()
    rolling = volume.rolling_obv(c.to_numpy(), v.to_numpy(), 20, relative=False)
    np.testing.assert_allclose(rolling[20:], (ours[20:] - ours[:-20]), rtol=1e-6, atol=1e-6)


def test_session_vwap_restarts_each_utc_day(btc_1h: pd.DataFrame) -> None:
    df = btc_1h.iloc[:200]
    tp = (df["high"] + df["low"] + df["close"]) / 3
    day = df.index.floor("D")
    ref = (tp * df["volume"]).groupby(day).cumsum() / df["volume"].groupby(day).cumsum()
    ours = volume.session_vwap(
        *(df[k].to_numpy() for k in ("high", "low", "close", "volume")), df.index.asi8
    )
    np.testing.assert_allclose(ours, ref.to_numpy(), rtol=1e-12)


def test_volatility_estimators_match_hand_formulas(ohlcv: dict[str, pd.Series]) -> None:
    o, h, lo, c = (ohlcv[k].to_numpy() for k in ("open", "high", "low", "close"))
    r = np.diff(np.log(c))
    t, w = 500, 20
    window = r[t - w : t]
    assert volatility.realized_vol(c, w)[t] == pytest.approx(np.sqrt(np.mean(window**2)), rel=1e-9)
    hl = np.log(h[t - w + 1 : t + 1] / lo[t - w + 1 : t + 1])
    co = np.log(c[t - w + 1 : t + 1] / o[t - w + 1 : t + 1])
    park = np.sqrt(np.mean(hl**2) / (4 * np.log(2)))
    gk = np.sqrt(np.mean(0.5 * hl**2 - (2 * np.log(2) - 1) * co**2))
    assert volatility.parkinson(h, lo, w)[t] == pytest.approx(park, rel=1e-9)
    assert volatility.garman_klass(o, h, lo, c, w)[t] == pytest.approx(gk, rel=1e-9)


def test_return_moments_match_scipy(ohlcv: dict[str, pd.Series]) -> None:
    c = ohlcv["close"].to_numpy()
    r = np.diff(np.log(c))
    mean, std, skew, kurt = statistics.return_moments(c, 50)
    for t in (50, 777, 2999):
        window = r[t - 50 : t]
        assert mean[t] == pytest.approx(window.mean(), rel=1e-9)
        assert std[t] == pytest.approx(window.std(), rel=1e-9)
        assert skew[t] == pytest.approx(stats.skew(window), rel=1e-8)
        assert kurt[t] == pytest.approx(stats.kurtosis(window), rel=1e-8)


def _acf(x: np.ndarray, lag: int) -> float:
    d = x - x.mean()
    return float(np.sum(d[lag:] * d[:-lag]) / np.sum(d * d))


def test_autocorrelation_matches_direct_computation(ohlcv: dict[str, pd.Series]) -> None:
    c = ohlcv["close"].to_numpy()
    r = np.diff(np.log(c))
    acf = statistics.autocorr(c, 100, 10)
    for t in (100, 101, 199, 200, 1234, 2999):
        window = r[t - 100 : t]
        expected = [_acf(window, lag) for lag in range(1, 11)]
        np.testing.assert_allclose(acf[t], expected, rtol=1e-7, atol=1e-10)


def test_hurst_matches_direct_computation_and_random_walk(ohlcv: dict[str, pd.Series]) -> None:
    c = ohlcv["close"].to_numpy()
    logp = np.log(c)
    h = statistics.hurst(c, 100, 16)
    lags = np.array([1, 2, 4, 8, 16])
    for t in (99, 150, 2999):
        w = logp[t - 99 : t + 1]
        sd = [np.sqrt(np.mean((w[k:] - w[:-k]) ** 2)) for k in lags]
        assert h[t] == pytest.approx(np.polyfit(np.log(lags), np.log(sd), 1)[0], rel=1e-7)
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 20_000)))
    assert np.nanmean(statistics.hurst(walk, 100, 16)) == pytest.approx(0.5, abs=0.05)


def test_rank_sharpe_drawdown_trend(ohlcv: dict[str, pd.Series]) -> None:
    c = ohlcv["close"].to_numpy()
    t = 800
    window = c[t - 99 : t + 1]
    assert statistics.pct_rank(c, 100)[t] == pytest.approx(np.mean(window <= c[t]))
    assert statistics.drawdown(c, 100)[t] == pytest.approx(c[t] / window.max() - 1)
    assert statistics.zscore(c, 100)[t] == pytest.approx((c[t] - window.mean()) / window.std())
    r = np.diff(np.log(c))[t - 100 : t]
    assert statistics.rolling_sharpe(c, 100)[t] == pytest.approx(r.mean() / r.std(), rel=1e-8)
    y = np.log(c[t - 19 : t + 1])
    slope = np.polyfit(np.arange(20), y, 1)[0]
    r2 = np.corrcoef(np.arange(20), y)[0, 1] ** 2
    assert statistics.trend_strength(c, 20)[t] == pytest.approx(np.sign(slope) * r2, rel=1e-8)


def test_microstructure_match_hand_formulas(ohlcv: dict[str, pd.Series]) -> None:
    c, v = ohlcv["close"].to_numpy(), ohlcv["volume"].to_numpy()
    r = np.diff(np.log(c))
    t, w = 900, 20
    rw = r[t - w : t]
    amihud = np.sum(np.abs(rw)) / np.sum(c[t - w + 1 : t + 1] * v[t - w + 1 : t + 1])
    assert microstructure.amihud(c, v, w)[t] == pytest.approx(amihud, rel=1e-9)
    cov = np.cov(r[t - w : t], r[t - w - 1 : t - 1], bias=True)[0, 1]
    roll = 2 * np.sqrt(max(-cov, 0.0))
    assert microstructure.roll_spread(c, w)[t] == pytest.approx(roll, rel=1e-7, abs=1e-12)
    s = np.sign(rw) * np.sqrt(c[t - w + 1 : t + 1] * v[t - w + 1 : t + 1])
    kyle = np.cov(rw, s, bias=True)[0, 1] / np.var(s)
    assert microstructure.kyle_lambda(c, v, w)[t] == pytest.approx(kyle, rel=1e-7)


def test_corwin_schultz_two_bar_estimate() -> None:
    high = np.array([101.0, 101.5])
    low = np.array([99.0, 99.2])
    beta = np.log(101 / 99) ** 2 + np.log(101.5 / 99.2) ** 2
    gamma = np.log(101.5 / 99) ** 2
    k = 3 - 2 * np.sqrt(2)
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    expected = max(2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha)), 0.0)
    assert microstructure.corwin_schultz(high, low, 1)[1] == pytest.approx(expected)
    assert expected > 0


def test_swings_fibonacci_and_anchored_vwap_by_hand() -> None:
    # a peak at bar 3 (confirmed at bar 5 with right=2) and a trough at bar 6 (confirmed at 8)
    high = np.array([10, 11, 12, 15, 13, 12, 11, 12, 13, 14], dtype=float)
    low = high - 1.0
    low[6] = 8.0
    close = high - 0.5
    vol = np.arange(1.0, 11.0)
    hi_idx, lo_idx = levels.confirmed_swings(high, low, 2, 2)
    assert list(hi_idx) == [-1] * 5 + [3] * 5
    assert list(lo_idx) == [-1] * 8 + [6] * 2
    lv, direction = levels.fibonacci_levels(high, low, 2, 2, (0.5, 1.618))
    assert np.isnan(lv[7]).all() and direction[8] == -1.0
    # down-swing from 15 to 8: 50 % retracement 11.5, 161.8 % extension 15 - 1.618 * 7
    np.testing.assert_allclose(lv[8], [11.5, 15 - 1.618 * 7])
    atr = np.full(10, 2.0)
    assert levels.level_distance(close, lv, atr)[9, 0] == pytest.approx((13.5 - 11.5) / 2)
    avwap_high, avwap_low = volume.anchored_vwap(high, low, close, vol, 2, 2)
    tp = (high + low + close) / 3
    assert np.isnan(avwap_high[4]) and np.isnan(avwap_low[7])
    assert avwap_high[6] == pytest.approx(np.sum(tp[3:7] * vol[3:7]) / np.sum(vol[3:7]))
    assert avwap_low[9] == pytest.approx(np.sum(tp[6:10] * vol[6:10]) / np.sum(vol[6:10]))


def test_calendar_encoding_known_values() -> None:
    ts = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-03 06:00"], tz="UTC")  # Mon, Wed
    ts = ts.as_unit("ns").asi8
    hour_sin, hour_cos = calendar.hour_of_day(ts)
    dow_sin, dow_cos = calendar.day_of_week(ts)
    np.testing.assert_allclose(hour_sin, [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(hour_cos, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(dow_sin, [0.0, np.sin(2 * np.pi * 2 / 7)], atol=1e-12)
    np.testing.assert_allclose(dow_cos, [1.0, np.cos(2 * np.pi * 2 / 7)], atol=1e-12)


def test_garch_matches_arch_fit_and_forecast(ohlcv: dict[str, pd.Series]) -> None:
    from arch import arch_model

    c = ohlcv["close"].to_numpy()[:1300]
    r = np.diff(np.log(c))
    ours = volatility.garch_vol(c, window=1000, refit_every=1000)
    assert np.isnan(ours[:1000]).all() and np.isfinite(ours[1000:]).all()
    window = r[:1000]  # returns of bars 1..1000, known at the close of bar 1000
    scale = np.sqrt(np.mean(window**2))
    res = arch_model(window / scale, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(
        disp="off"
    )
    forecast = np.sqrt(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) * scale
    assert ours[1000] == pytest.approx(forecast, rel=1e-4)
