"""Yahoo Finance downloads over httpx against a chart-API server on 127.0.0.1."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from binance_server import Fault
from yahoo_server import YahooState, serve_yahoo

from aitrader.cli import main
from aitrader.config import DownloadConfig
from aitrader.data.download import SourceOverrides, download, sync
from aitrader.data.samples import load_sample
from aitrader.data.sources.yahoo import parse_chart_result
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import SourceError, TransientSourceError

SPY = DatasetKey("yahoo", "SPY", "1d")


def fast_config(**changes: float) -> DownloadConfig:
    values: dict[str, float] = {
        "page_limit": 1000,
        "max_retries": 4,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "timeout": 2.0,
    }
    return DownloadConfig(**{**values, **changes})


def spy_state(rows: int | None = None) -> YahooState:
    """Real SPY dailies; "now" is mid-session on the last day, so that bar is still open."""
    spy = load_sample("SPY-1d")
    spy = spy.iloc[:rows] if rows else spy
    return YahooState({"SPY": spy}, spy.index[-1] + pd.Timedelta(hours=17))


@contextmanager
def yahoo(state: YahooState) -> Iterator[SourceOverrides]:
    with serve_yahoo(state) as base:
        yield SourceOverrides({"yahoo": {"base": base}})


def fetch_spy(
    store: Store, overrides: SourceOverrides, config: DownloadConfig, timeframe: str = "1d"
) -> list:
    since = load_sample("SPY-1d").index[0]
    return download(store, "yahoo", ["SPY"], timeframe, (since, None), config, overrides=overrides)


def test_daily_download_drops_null_rows_and_the_open_bar(tmp_path: Path) -> None:
    state, store = spy_state(), Store(tmp_path)
    spy = state.daily["SPY"]
    state.null_dates = {spy.index[100], spy.index[2000]}
    with yahoo(state) as overrides:
        [result] = fetch_spy(store, overrides, fast_config())
    expected = spy.iloc[:-1].drop([spy.index[100], spy.index[2000]])
    pd.testing.assert_frame_equal(store.read(SPY), expected, check_freq=False)
    assert result.skipped_rows == 2 and result.open_candle_dropped
    assert store.metadata(SPY).source == "yahoo"


def test_daily_pages_and_request_parameters(tmp_path: Path) -> None:
    state, store = spy_state(), Store(tmp_path)
    with yahoo(state) as overrides:
        [result] = fetch_spy(store, overrides, fast_config(page_limit=1000))
    assert store.metadata(DatasetKey("yahoo", "SPY", "1d")).calendar == "equity"  # no weekends
    requests = state.data_requests()
    spy = state.daily["SPY"]
    days = (state.now - spy.index[0]) / pd.Timedelta(days=1)
    assert len(requests) == result.pages == int(days // 1000) + 1
    assert {(q["interval"], q["events"]) for q in requests} == {("1d", "div,splits")}
    starts = [int(q["period1"]) for q in requests]
    assert starts == sorted(starts) and all(
        b - a == 1000 * 86400 for a, b in itertools.pairwise(starts)
    )
    assert int(requests[0]["period1"]) == int(spy.index[0].timestamp()) - 86400


def test_weekly_bars_are_mapped_to_1w_and_labelled_monday(tmp_path: Path) -> None:
    state, store = spy_state(), Store(tmp_path)
    with yahoo(state) as overrides:
        fetch_spy(store, overrides, fast_config(), timeframe="1w")
    weekly = store.read(DatasetKey("yahoo", "SPY", "1w"))
    assert {q["interval"] for q in state.data_requests()} == {"1wk"}
    spy = state.daily["SPY"]
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    expected = spy.resample("W-MON", label="left", closed="left").agg(agg).dropna().iloc[:-1]
    assert (weekly.index.day_of_week == 0).all()
    pd.testing.assert_frame_equal(weekly, expected, check_freq=False)


def test_hourly_download_and_the_730_day_limit(tmp_path: Path) -> None:
    btc = load_sample("BTC-USD-1h").iloc[-3000:]
    now = btc.index[-1] + pd.Timedelta(minutes=30)
    state, store = YahooState({}, now, hourly={"BTC-USD": btc}), Store(tmp_path)
    with yahoo(state) as overrides:
        config = fast_config(page_limit=500)
        too_early = now - pd.Timedelta(days=800)
        with pytest.raises(SourceError, match="last 730 days only"):
            download(
                store, "yahoo", ["BTC-USD"], "1h", (too_early, None), config, overrides=overrides
            )
        assert state.data_requests() == []
        download(
            store, "yahoo", ["BTC-USD"], "1h", (btc.index[0], None), config, overrides=overrides
        )
    stored = store.read(DatasetKey("yahoo", "BTC-USD", "1h"))
    expected = btc.iloc[:-1].assign(volume=btc["volume"].iloc[:-1].astype("int64").astype(float))
    pd.testing.assert_frame_equal(stored, expected, check_freq=False)  # Yahoo volumes are ints


def test_unknown_symbol_reports_yahoos_description(tmp_path: Path) -> None:
    state, store = spy_state(50), Store(tmp_path)
    with yahoo(state) as overrides, pytest.raises(SourceError, match="symbol may be delisted"):
        download(
            store, "yahoo", ["SPY", "SPYY"], "1d", (None, None), fast_config(), overrides=overrides
        )
    assert state.data_requests() == [] and store.list() == []


def test_unsupported_timeframe_lists_supported(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'4h'; supported: 1h, 1d, 1w"):
        download(Store(tmp_path), "yahoo", ["SPY"], "4h", (None, None), fast_config())


def test_cli_unknown_symbol_exits_1_with_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, store = spy_state(50), Store(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AITRADER__DATA__DIR", str(store.root))
    monkeypatch.setenv("COLUMNS", "300")
    with yahoo(state) as overrides:
        base = overrides.urls["yahoo"]["base"]
        args = ["aitrader", "data", "download", "--source", "yahoo", "-s", "NOPE", "-t", "1d"]
        monkeypatch.setattr(
            sys, "argv", [*args, "--since", "2020-01-01", "--api-url", f"base={base}"]
        )
        with pytest.raises(SystemExit) as exited:
            main()
    assert exited.value.code == 1
    assert "yahoo NOPE 1d: Yahoo says Not Found: No data found" in capsys.readouterr().err
    assert store.list() == []


def test_429_with_retry_after_then_5xx_burst_then_timeout_are_retried(tmp_path: Path) -> None:
    state = spy_state(300)
    state.faults.extend([Fault(429, retry_after="1"), Fault(502), Fault(503), Fault(delay=1.5)])
    with yahoo(state) as overrides:
        [result] = fetch_spy(Store(tmp_path), overrides, fast_config(timeout=0.3))
    times = [t for _, q, t in state.requests if "period1" in q]
    assert len(times) == 5 and result.pages == 1
    assert times[1] - times[0] >= 0.95 and times[4] - times[3] < 0.95
    expected = state.daily["SPY"].iloc[:-1]
    pd.testing.assert_frame_equal(Store(tmp_path).read(SPY), expected, check_freq=False)


def test_retries_exhausted_keep_earlier_pages_and_rerun_completes(tmp_path: Path) -> None:
    state, store = spy_state(), Store(tmp_path)
    with yahoo(state) as overrides:
        fetch_spy(store, overrides, fast_config(page_limit=1000))
        full = store.read(SPY)
        store.delete(SPY)
        state.requests.clear()
        state.faults.extend([Fault(), Fault(), *(Fault(503) for _ in range(3))])
        with pytest.raises(TransientSourceError, match="giving up after 3 attempts"):
            fetch_spy(store, overrides, fast_config(page_limit=1000, max_retries=2))
        kept = store.read(SPY)
        assert len(kept) > 0
        pd.testing.assert_frame_equal(kept, full.loc[: kept.index[-1]], check_freq=False)
        state.requests.clear()
        fetch_spy(store, overrides, fast_config(page_limit=1000))
    first = pd.Timestamp(int(state.data_requests()[0]["period1"]), unit="s", tz="UTC")
    # resume at the last stored bar + 1 day, asked from one day earlier (time-zone pad)
    assert first == kept.index[-1] and first > full.index[0]
    pd.testing.assert_frame_equal(store.read(SPY), full, check_freq=False)


def test_sync_brings_a_yahoo_series_up_to_date(tmp_path: Path) -> None:
    state, store = spy_state(400), Store(tmp_path)
    with yahoo(state) as overrides:
        fetch_spy(store, overrides, fast_config())
        state.daily = {"SPY": load_sample("SPY-1d").iloc[:450]}
        state.now = state.daily["SPY"].index[-1] + pd.Timedelta(hours=20)
        [result] = sync(store, fast_config(), overrides=overrides)
    assert result.status == "downloaded" and result.rows_added == 50
    pd.testing.assert_frame_equal(store.read(SPY), state.daily["SPY"].iloc[:-1], check_freq=False)


def test_chart_result_parsing_labels_sessions_and_counts_nulls() -> None:
    result = {
        "meta": {"exchangeTimezoneName": "America/New_York", "gmtoffset": -18000},
        "timestamp": [1609770600, 1609857000, 1609943400],
        "indicators": {
            "quote": [
                {
                    "open": [375.31, None, 369.71],
                    "high": [375.45, None, 376.98],
                    "low": [364.82, None, 369.12],
                    "close": [368.79, None, 373.55],
                    "volume": [110210800, None, 107997700],
                }
            ]
        },
    }
    frame, skipped = parse_chart_result(result, "1d", "test")
    assert skipped == 1
    assert [t.isoformat() for t in frame.index] == [
        "2021-01-04T00:00:00+00:00",
        "2021-01-06T00:00:00+00:00",
    ]
    assert frame["close"].tolist() == [368.79, 373.55]
    with pytest.raises(SourceError, match="'high' missing"):
        parse_chart_result({**result, "indicators": {"quote": [{"open": [1, 2, 3]}]}}, "1d", "t")


def test_time_is_taken_from_yahoos_date_header(tmp_path: Path) -> None:
    state = spy_state(60)
    with yahoo(state) as overrides:
        [result] = fetch_spy(Store(tmp_path), overrides, fast_config())
    assert result.open_candle_dropped
    assert Store(tmp_path).read(SPY).index[-1] == state.daily["SPY"].index[-2]
