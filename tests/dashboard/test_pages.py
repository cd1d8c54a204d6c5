"""Every dashboard page run by Streamlit's AppTest against a real API (uvicorn on 127.0.0.1)
over a real paper run's ledger: no exception, and the numbers a trader reads are the ledger's."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from ops_helpers import client
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import aitrader.dashboard
from aitrader.analytics.units import format_metric
from aitrader.cli import app
from aitrader.live.ledger import KILL, PAUSE, Ledger

APP = str(Path(aitrader.dashboard.__file__).parent / "app.py")
Api = tuple[str, Ledger]


def page(name: str, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["page"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success]
    return "\n".join(str(p.value) for p in parts)


def test_overview_shows_the_ledgers_equity_pnl_and_risk(dashboard_env: Api) -> None:
    url, _ = dashboard_env
    equity = client(url).get("/equity").json()
    at = page("overview")
    assert metric(at, "Equity") == f"{equity['last_equity']:,.2f}"
    assert metric(at, "P&L (net of costs)") == f"{equity['pnl']:,.2f}"
    assert metric(at, "Drawdown from peak") == f"{equity['drawdown']:.2%}"
    shown = texts(at)
    assert "kill switch: **off**" in shown and "trading allowed" in shown
    assert "bars:** 1,500" in shown
    assert len(at.get("plotly_chart")) == 1


def test_overview_controls_pause_resume_and_kill_through_the_api(dashboard_env: Api) -> None:
    _, ledger = dashboard_env
    at = page("overview")
    at.button(key="control-pause").click().run()
    assert ledger.get_flag(PAUSE).on and ledger.get_flag(PAUSE).reason == "from the dashboard"
    assert "paused: no new orders" in texts(at)
    at.button(key="control-resume").click().run()
    assert not ledger.get_flag(PAUSE).on
    at.button(key="control-kill").click().run()
    assert not ledger.get_flag(KILL).on and "tick “I mean it” first" in texts(at)
    at.checkbox[0].check().run()
    at.button(key="control-kill").click().run()
    assert ledger.get_flag(KILL).on
    assert "KILL SWITCH ON" in texts(page("overview"))


def test_price_page_draws_the_runs_fills_and_targets(dashboard_env: Api) -> None:
    url, _ = dashboard_env
    at = page("price")
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    candles = next(t for t in figure["data"] if t["type"] == "candlestick")
    assert len(candles["x"]) == 500  # the default window
    shown = texts(at)
    assert "sample:BTC-USD-1h" in at.selectbox[0].value
    window_start = pd.Timestamp(candles["x"][0], tz="UTC")
    fills = client(url).get("/fills", params={"since": window_start.isoformat()}).json()
    buys = sum(1 for f in fills["items"] if f["side"] == 1)
    assert f"Shown: {buys} buy fills" in shown and buys > 0


def test_trades_page_totals_filters_and_csv(dashboard_env: Api) -> None:
    url, _ = dashboard_env
    every = client(url).get("/trades", params={"limit": 1000}).json()
    closed = [t for t in every["items"] if not t["is_open"]]
    at = page("trades")
    assert metric(at, "Trades") == f"{every['total']:,}"
    assert metric(at, "Closed") == f"{len(closed):,}"
    assert metric(at, "Net P&L (closed)") == f"{sum(t['pnl'] for t in closed):,.2f}"
    wins = sum(t["pnl"] > 0 for t in closed) / len(closed)
    assert metric(at, "Win rate (closed)") == f"{wins:.1%}"
    assert len(at.get("download_button")) == 1
    at.selectbox[2].select("closed").run()
    assert metric(at, "Trades") == f"{len(closed):,}"
    shorts = client(url).get("/trades", params={"side": "sell"}).json()["total"]
    at.selectbox[1].select("short").run()
    assert shorts == 0 and "No trade matches these filters." in texts(at)


def test_model_page_says_what_is_missing(dashboard_env: Api) -> None:
    at = page("model")
    shown = texts(at)
    assert "/ml-metrics" in shown or "Live model" in shown
    assert "Model bundle: not given" in shown


def test_model_page_judges_a_bundle(
    dashboard_env: Api, bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITRADER_DASHBOARD_BUNDLE", str(bundle_dir))
    at = page("model", timeout=300)
    shown = texts(at)
    assert "Scored on **" in shown and "Brier score" in shown
    assert "logistic" in at.table[0].value["value"].tolist()
    assert len(at.get("plotly_chart")) == 4  # calibration, histogram, coverage, importance


def test_backtest_explorer_equals_the_cli(dashboard_env: Api, tmp_path: Path) -> None:
    at = page("backtest")
    assert "press Run backtest" in texts(at)
    at.date_input[0].set_value(pd.Timestamp("2022-09-01").date())
    at.date_input[1].set_value(pd.Timestamp("2022-12-31").date())
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    args = ["backtest", "sample:BTC-USD-1h", "--start", "2022-09-01", "--end", "2022-12-31"]
    cli = CliRunner().invoke(app, [*args, "--json"], env={"AITRADER__DATA__DIR": str(tmp_path)})
    assert cli.exit_code == 0, cli.output
    metrics = json.loads(cli.stdout)["metrics"]
    assert metric(at, "trades") == str(metrics["trades"])
    assert metric(at, "total return") == format_metric("total_return", metrics["total_return"])


def test_data_page_reports_coverage_and_quality(dashboard_env: Api) -> None:
    at = page("data")
    shown = texts(at)
    assert "The store is empty" in shown
    assert "**52,521 bars**" in shown and "gaps" in shown
    assert len(at.get("plotly_chart")) == 1


def test_the_sidebar_switches_pages(dashboard_env: Api) -> None:
    at = page("overview")
    at.sidebar.radio[0].set_value("trades").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Trades" and at.query_params["page"] == "trades"
    at.sidebar.radio[0].set_value("data").run()
    assert at.title[0].value == "Data: coverage and quality"


def test_pages_without_an_api_or_with_a_wrong_token_say_so(
    dashboard_env: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITRADER_DASHBOARD_TOKEN", "wrong-token-0123456789")
    assert "refused the token (401)" in texts(page("overview"))
    assert "refused the token (401)" in texts(page("trades"))
    monkeypatch.setenv("AITRADER_DASHBOARD_API_URL", "")
    assert "no API configured" in texts(page("overview"))
