"""Exchange downloads: the real ccxt client against a Binance-speaking server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pandas as pd
import pytest
from binance_server import BinanceState, Fault, api_urls, serve_binance
from typer.testing import CliRunner

from aitrader.cli import app, main
from aitrader.config import DownloadConfig
from aitrader.data.download import SourceOverrides, download, sync
from aitrader.data.samples import load_sample
from aitrader.data.schema import validate_candles
from aitrader.data.sources.retry import Backoff, parse_retry_after
from aitrader.data.store import DatasetKey, Store
from aitrader.errors import ConfigError, SourceError, TransientSourceError
from aitrader.venues.ccxt.data import ohlcv_to_frame

KEY = DatasetKey("binance", "BTC/USDT", "1m")
MINUTE_MS = 60_000
AITRADER = Path(sys.executable).with_name("aitrader")


def fast_config(**changes: float) -> DownloadConfig:
    """Small pages and tiny backoff so the suite stays fast."""
    values: dict[str, float] = {
        "page_limit": 200,
        "max_retries": 4,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "timeout": 2.0,
    }
    return DownloadConfig(**{**values, **changes})


def make_state(rows: int = 1050) -> BinanceState:
    """Real BTC 1m candles; "now" is 30 s into the last one, so it is still open."""
    candles = load_sample("BTC-PERP-1m").iloc[:rows]
    return BinanceState(candles, "1m", candles.index[-1] + pd.Timedelta(seconds=30))


@contextmanager
def binance(state: BinanceState) -> Iterator[SourceOverrides]:
    with serve_binance(state) as base:
        yield SourceOverrides({"binance": api_urls(base)}, ("spot",))


def fetch(
    store: Store, overrides: SourceOverrides, config: DownloadConfig, symbol: str = "BTC/USDT"
) -> list:
    since = load_sample("BTC-PERP-1m").index[0]
    return download(store, "binance", [symbol], "1m", (since, None), config, overrides=overrides)


def start_times(state: BinanceState) -> list[int]:
    return [int(q["startTime"]) for q in state.klines_requests()]


def test_full_download_equals_served_data_minus_open_candle(tmp_path: Path) -> None:
    state, store, events = make_state(), Store(tmp_path), []
    with binance(state) as overrides:
        since = state.candles.index[0]
        [result] = download(
            store,
            "binance",
            ["BTC/USDT"],
            "1m",
            (since, None),
            fast_config(),
            progress=events.append,
            overrides=overrides,
        )
    assert events[-1].finished and events[-1].done == events[-1].total == len(state.candles)
    assert [e.done for e in events] == sorted(e.done for e in events) and len(events) == 8
    stored = store.read(KEY)
    pd.testing.assert_frame_equal(stored, state.candles.iloc[:-1], check_freq=False)
    assert state.candles.index[-1] not in stored.index
    assert result.open_candle_dropped and result.rows_added == len(state.candles) - 1
    assert result.status == "downloaded" and result.source == "ccxt:binance"
    assert store.metadata(KEY).source == "ccxt:binance"


def test_pages_follow_the_last_candle_with_page_limit(tmp_path: Path) -> None:
    state = make_state(1050)
    with binance(state) as overrides:
        [result] = fetch(Store(tmp_path), overrides, fast_config(page_limit=200))
    requests = state.klines_requests()
    assert len(requests) == 6 and result.pages == 6
    assert {q["limit"] for q in requests} == {"200"}
    assert {(q["symbol"], q["interval"]) for q in requests} == {("BTCUSDT", "1m")}
    first = state.candles.index[0].value // 1_000_000
    assert start_times(state) == [first + i * 200 * MINUTE_MS for i in range(6)]


def test_rerun_fetches_only_new_closed_candles(tmp_path: Path) -> None:
    full = load_sample("BTC-PERP-1m").iloc[:1100]
    state, store = make_state(1050), Store(tmp_path)
    with binance(state) as overrides:
        fetch(store, overrides, fast_config())
        last = store.read(KEY).index[-1]
        state.candles = full
        state.now = full.index[-1] + pd.Timedelta(seconds=5)
        state.requests.clear()
        [result] = fetch(store, overrides, fast_config())
    assert start_times(state) == [(last + pd.Timedelta(minutes=1)).value // 1_000_000]
    assert result.rows_added == 50
    pd.testing.assert_frame_equal(store.read(KEY), full.iloc[:-1], check_freq=False)


def test_outage_keeps_fetched_pages_and_rerun_fetches_only_the_rest(tmp_path: Path) -> None:
    state, store = make_state(1050), Store(tmp_path)
    state.ok_klines_before_outage = 3
    with binance(state) as overrides:
        with pytest.raises(TransientSourceError, match="giving up after 3 attempts"):
            fetch(store, overrides, fast_config(max_retries=2))
        kept = store.read(KEY)
        pd.testing.assert_frame_equal(kept, state.candles.iloc[:600], check_freq=False)
        state.ok_klines_before_outage = None
        state.requests.clear()
        [result] = fetch(store, overrides, fast_config())
    assert start_times(state)[0] == (kept.index[-1] + pd.Timedelta(minutes=1)).value // 1_000_000
    assert len(state.klines_requests()) == 3 and result.rows_added == 1049 - 600
    stored = store.read(KEY)
    assert stored.index.is_unique
    pd.testing.assert_frame_equal(stored, state.candles.iloc[:-1], check_freq=False)


def test_sigkilled_cli_download_resumes_to_complete_valid_data(tmp_path: Path) -> None:
    state, store = make_state(1050), Store(tmp_path / "store")
    state.faults.extend(Fault(delay=0.25) for _ in range(6))
    env = {
        **os.environ,
        "AITRADER__DATA__DIR": str(store.root),
        "AITRADER__DATA__DOWNLOAD__PAGE_LIMIT": "100",
        "AITRADER__DATA__DOWNLOAD__FLUSH_PAGES": "1",
    }
    with binance(state) as overrides:
        url = overrides.urls["binance"]["public"]
        args = [str(AITRADER), "data", "download", "-e", "binance", "-s", "BTC/USDT", "-t", "1m"]
        args += ["--since", "2021-12-31T23:00", "--api-url", f"public={url}", "--json"]
        args += ["--market-type", "spot"]
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not store.exists(KEY) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        partial = store.read(KEY)
        validate_candles(partial, "after kill")
        assert 0 < len(partial) < 1049
        pd.testing.assert_frame_equal(partial, state.candles.iloc[: len(partial)], check_freq=False)
        state.requests.clear()
        fetch(store, overrides, fast_config())
    assert start_times(state)[0] == (partial.index[-1] + pd.Timedelta(minutes=1)).value // 1_000_000
    pd.testing.assert_frame_equal(store.read(KEY), state.candles.iloc[:-1], check_freq=False)


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    state = make_state(300)
    state.faults.append(Fault(429, retry_after="1"))
    with binance(state) as overrides:
        fetch(Store(tmp_path), overrides, fast_config())
    times = [t for p, _, t in state.requests if p == "/api/v3/klines"]
    assert times[1] - times[0] >= 0.95
    assert start_times(state)[0] == start_times(state)[1]
    pd.testing.assert_frame_equal(
        Store(tmp_path).read(KEY), state.candles.iloc[:-1], check_freq=False
    )


def test_burst_of_5xx_is_retried(tmp_path: Path) -> None:
    state = make_state(300)
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    internal = '{"code":-1001,"msg":"Internal error; unable to process your request."}'
    state.faults.extend([Fault(502, body=html), Fault(503, body=internal), Fault(504, body=html)])
    with binance(state) as overrides:
        [result] = fetch(Store(tmp_path), overrides, fast_config())
    assert len(state.klines_requests()) == 2 + 3 and result.pages == 2
    pd.testing.assert_frame_equal(
        Store(tmp_path).read(KEY), state.candles.iloc[:-1], check_freq=False
    )


def test_slow_response_times_out_and_is_retried(tmp_path: Path) -> None:
    state = make_state(300)
    state.faults.append(Fault(delay=1.5))
    started = time.monotonic()
    with binance(state) as overrides:
        fetch(Store(tmp_path), overrides, fast_config(timeout=0.3))
    assert time.monotonic() - started < 1.4
    assert len(state.klines_requests()) == 3
    pd.testing.assert_frame_equal(
        Store(tmp_path).read(KEY), state.candles.iloc[:-1], check_freq=False
    )


def test_first_page_failing_leaves_no_data(tmp_path: Path) -> None:
    state, store = make_state(300), Store(tmp_path)
    state.ok_klines_before_outage = 0
    with binance(state) as overrides, pytest.raises(TransientSourceError, match="BTC/USDT 1m"):
        fetch(store, overrides, fast_config(max_retries=1))
    assert len(state.klines_requests()) == 2 and store.list() == []


def test_unknown_symbol_names_it_and_fetches_nothing(tmp_path: Path) -> None:
    state, store = make_state(300), Store(tmp_path)
    with binance(state) as overrides, pytest.raises(SourceError, match="no market 'BTC/USTD'"):
        fetch(store, overrides, fast_config(), symbol="BTC/USTD")
    assert state.klines_requests() == [] and store.list() == []


def test_new_series_needs_a_start_date(tmp_path: Path) -> None:
    state = make_state(300)
    with binance(state) as overrides, pytest.raises(ConfigError, match="give a start date"):
        download(
            Store(tmp_path),
            "binance",
            ["BTC/USDT"],
            "1m",
            (None, None),
            fast_config(),
            overrides=overrides,
        )
    assert state.klines_requests() == []


def test_unknown_exchange_lists_close_matches(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"unknown exchange 'binanse'.*binance"):
        download(Store(tmp_path), "binanse", ["BTC/USDT"], "1h", (None, None), fast_config())


def test_unsupported_timeframe_lists_supported(tmp_path: Path) -> None:
    state = make_state(300)
    with binance(state) as overrides, pytest.raises(SourceError, match=r"'7m'; supported: 1s, 1m"):
        download(
            Store(tmp_path),
            "binance",
            ["BTC/USDT"],
            "7m",
            (None, None),
            fast_config(),
            overrides=overrides,
        )
    assert state.requests == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-e", "binance", "-s", "NOPE/USDT"], "no market 'NOPE/USDT'"),
        (["-e", "binanse", "-s", "BTC/USDT"], "unknown exchange 'binanse'"),
        (["-e", "binance", "-s", "BTC/USDT", "-t", "7m"], "does not support timeframe '7m'"),
    ],
)
def test_cli_errors_exit_non_zero_and_leave_store_unchanged(
    tmp_path: Path,
    extra: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, store = make_state(300), Store(tmp_path / "store")
    store.write(KEY, state.candles.iloc[:10], "ccxt:binance")
    before = store.metadata(KEY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AITRADER__DATA__DIR", str(store.root))
    monkeypatch.setenv("COLUMNS", "300")
    with binance(state) as overrides:
        url = overrides.urls["binance"]["public"]
        args = ["aitrader", "data", "download", *extra, "--since", "2022-01-01"]
        args += ["--api-url", f"binance:public={url}", "--market-type", "spot"]
        monkeypatch.setattr(sys, "argv", args)
        with pytest.raises(SystemExit) as exited:
            main()
    assert exited.value.code == 2  # a name that does not exist: a usage error
    assert message in " ".join(capsys.readouterr().err.split())
    assert store.list() == [before] and state.klines_requests() == []


def test_cli_sync_updates_downloaded_series_and_skips_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = load_sample("BTC-PERP-1m").iloc[:700]
    state, store = make_state(400), Store(tmp_path / "store")
    imported = DatasetKey("kraken", "BTC/USD", "1h")
    store.write(imported, load_sample("BTC-USD-1h").iloc[:50], "file:/tmp/x.csv")
    monkeypatch.chdir(tmp_path)
    env = {"AITRADER__DATA__DIR": str(store.root), "AITRADER__DATA__DOWNLOAD__BACKOFF_MAX": "0.1"}
    with binance(state) as overrides:
        fetch(store, overrides, fast_config())
        state.candles, state.now = full, full.index[-1] + pd.Timedelta(seconds=1)
        url = overrides.urls["binance"]["public"]
        args = ["data", "sync", "--api-url", f"binance:public={url}", "--market-type", "spot"]
        result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(store.read(KEY), full.iloc[:-1], check_freq=False)
    report = {r["dataset"]: r for r in json.loads(result.stdout)}
    assert report[str(KEY)]["status"] == "downloaded" and report[str(KEY)]["rows_added"] == 300
    assert report[str(imported)]["status"] == "skipped"
    assert "file:/tmp/x.csv" in report[str(imported)]["message"]


def test_sync_reports_a_failing_series_and_updates_the_others(tmp_path: Path) -> None:
    state, store = make_state(400), Store(tmp_path)
    gone = DatasetKey("binance", "LUNA/USDT", "1m")
    store.write(gone, state.candles.iloc[:5], "ccxt:binance")
    store.write(KEY, state.candles.iloc[:100], "ccxt:binance")
    with binance(state) as overrides:
        results = sync(store, fast_config(), overrides=overrides)
    by_name = {r.dataset: r for r in results}
    assert by_name[str(gone)].status == "failed"
    assert "no market 'LUNA/USDT'" in by_name[str(gone)].message
    assert by_name[str(KEY)].rows_added == 299
    assert store.read(gone).equals(state.candles.iloc[:5])


def test_backoff_grows_is_capped_and_never_undercuts_retry_after() -> None:
    backoff = Backoff(DownloadConfig(backoff_initial=1.0, backoff_max=8.0))
    delays = [backoff.delay(n) for n in range(8)]
    assert all(0.5 * min(8.0, 2.0**n) <= d <= min(8.0, 2.0**n) for n, d in enumerate(delays))
    assert max(delays) <= 8.0 and backoff.delay(0, retry_after=30.0) == 30.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_ohlcv_rows_become_schema_frame_with_nulls_kept_for_counting() -> None:
    rows = [[120_000, 2, 3, 1, 2, None], [60_000, 1, 2, 0.5, 1.5, 10.0], [60_000, 1, 2, 1, 1, 9]]
    frame = ohlcv_to_frame(rows)
    assert list(frame.index.asi8 // 1_000_000) == [60_000, 120_000]
    assert frame["volume"].iloc[0] == 9 and pd.isna(frame["volume"].iloc[1])


def test_download_into_an_imported_series_is_refused_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, store = make_state(300), Store(tmp_path / "store")
    store.write(KEY, state.candles.iloc[:10], "file:/tmp/kraken.csv")
    before = store.path(KEY).read_bytes()
    monkeypatch.chdir(tmp_path)
    env = {"AITRADER__DATA__DIR": str(store.root), "COLUMNS": "300"}
    with binance(state) as overrides:
        url = overrides.urls["binance"]["public"]
        args = ["data", "download", "-e", "binance", "-s", "BTC/USDT", "-t", "1m"]
        args += ["--api-url", f"binance:public={url}", "--market-type", "spot"]
        refused = CliRunner().invoke(app, args, env=env)
        assert refused.exit_code == 1
        assert "holds data from file:/tmp/kraken.csv" in " ".join(refused.output.split())
        assert store.path(KEY).read_bytes() == before and state.klines_requests() == []
        allowed = CliRunner().invoke(app, [*args, "--allow-other-source", "--json"], env=env)
    assert allowed.exit_code == 0, allowed.output
    meta = store.metadata(KEY)
    assert meta.source == "file:/tmp/kraken.csv" and meta.rows == 299
    assert [h["action"] for h in meta.history] == ["write", "download"]
