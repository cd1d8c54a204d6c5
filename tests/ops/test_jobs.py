"""The bot's jobs on real data: the daily report over a real paper run's ledger (HTML page and
summary), ``aitrader schedule run`` sending a job's message to a local Telegram Bot API
server, the scan job over the bundled sample, ``aitrader schedule list``, and the data sync
over a store (an imported series is not synced)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import yaml
from bot_api import TOKEN as BOT_TOKEN
from bot_api import BotApi, BotState
from factories import candles, write_csv
from local_http import serve
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings
from aitrader.live.ledger import Ledger
from aitrader.ops import views
from aitrader.ops.jobs import daily_report_job, data_sync_job
from aitrader.ops.texts import daily_text

runner = CliRunner()


def test_the_daily_report_of_a_paper_run(ledger_copy: Path, tmp_path: Path) -> None:
    cfg = Settings(bot={"ledger": ledger_copy}, schedule={"reports_dir": tmp_path / "reports"})
    said: list[str] = []
    summary = daily_report_job(cfg, said.append)
    with Ledger(ledger_copy) as ledger:
        day = pd.Timestamp(ledger.equity_curve().index[-1]).normalize()
        expected = daily_text(ledger, day)
        closed = views.trades(ledger, views.TradeFilter(is_open=False, limit=1000)).items
    page = tmp_path / "reports" / f"daily-{day:%Y-%m-%d}.html"
    assert said == [summary] == [f"daily report: {expected} ({page})"]
    text = page.read_text()
    assert f"<p id='summary'>{html.escape(expected)}</p>" in text
    that_day = [t for t in closed if t.exit_time is not None and t.exit_time.normalize() == day]
    assert text.count("<tr><td>") == len(that_day)
    assert "<polyline" in text


def write_config(tmp: Path, values: dict[str, object]) -> Path:
    path = tmp / "bot.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_schedule_run_sends_the_job_message_to_telegram(ledger_copy: Path, tmp_path: Path) -> None:
    bot = BotState()
    bot.gate.set()
    with serve(BotApi, bot) as url:
        config = write_config(
            tmp_path,
            {
                "bot": {"ledger": str(ledger_copy)},
                "schedule": {"reports_dir": str(tmp_path / "reports")},
                "notify": {
                    **{"telegram_chat_ids": [11], "telegram_api_url": url},
                    **{"min_interval": 0, "backoff": 0},
                },
            },
        )
        env = {"AITRADER__SECRETS__TELEGRAM_TOKEN": BOT_TOKEN}
        args = ["schedule", "run", "daily-report", "--config", str(config), "--json"]
        result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary.startswith("daily report: day ") and bot.messages == [(11, summary)]
    with Ledger(ledger_copy) as ledger:  # the run is recorded in the bot's ledger
        assert ledger.events("schedule")[-1].message == f"daily-report: {summary}"


def test_the_scan_job_and_the_schedule_list(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "data": {"dir": str(tmp_path / "store")},
            "run": {"data": ["sample:BTC-USD-1h"]},
            "bot": {"ledger": str(tmp_path / "none.db")},
            "schedule": {"scan_bars": 500, "jobs": {"scan": {"every_minutes": 15}}},
        },
    )
    result = runner.invoke(app, ["schedule", "run", "scan", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    scan = runner.invoke(app, ["scan", "sample:BTC-USD-1h", "--bars", "500", "--json"])
    plan = json.loads(scan.stdout)["results"][0]["plan"]
    side = {1: "LONG", -1: "SHORT", 0: "flat"}[plan["side"]]
    assert summary.startswith(f"scan: sample:BTC-USD-1h: {side}")
    assert f"notice: {summary}" in result.stderr.replace("\n", "")
    listed = runner.invoke(app, ["schedule", "list", "--config", str(config), "--json"])
    rows = {r["job"]: r for r in json.loads(listed.stdout)}
    assert rows["scan"]["schedule"] == "every 15 min"
    assert rows["retrain"]["schedule"] == "off"
    assert rows["retrain"]["calls"] == "aitrader.models.promotion:retrain_job"
    unknown = runner.invoke(app, ["schedule", "run", "nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "unknown job 'nope'" in unknown.output


def test_the_data_sync_job_skips_an_imported_series(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "prices.csv", candles(48))
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    args = ["data", "import", str(path), "-s", "BTC/USDT", "-t", "1h", "-e", "binance"]
    assert runner.invoke(app, args, env=env).exit_code == 0
    said: list[str] = []
    summary = data_sync_job(Settings(data={"dir": tmp_path / "store"}), said.append)
    assert summary == "data sync: 0 series updated (+0 bars), 1 skipped, 0 failed"
    assert said == []  # a notice only when a series failed
