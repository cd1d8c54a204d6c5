"""Notices from a paper run's ledger and Telegram commands from allow-listed chats, through a
local server speaking the Bot API (``sendMessage``, ``getUpdates``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from bot_api import TOKEN, BotApi, BotState, Webhook
from local_http import serve

from aitrader.live.ledger import KILL, PAUSE, Ledger
from aitrader.ops import views
from aitrader.ops.notify import (
    AppriseSender,
    Notice,
    Notifier,
    NotifyConfig,
    NotifyError,
    TelegramSender,
)
from aitrader.ops.telegram import TelegramCommands
from aitrader.ops.watch import LedgerWatcher, Reports


def update(update_id: int, chat: int, text: str) -> dict[str, object]:
    return {"update_id": update_id, "message": {"chat": {"id": chat}, "text": text}}


def test_the_watcher_turns_the_ledger_into_notices(ledger_copy: Path) -> None:
    notices: list[Notice] = []
    with Ledger(ledger_copy) as ledger, Ledger(ledger_copy) as operator:
        watcher = LedgerWatcher(ledger, lambda n: notices.append(n) or True, from_start=True)
        assert watcher.poll() == len(notices) > 0
        kinds = [n.kind for n in notices]
        assert kinds.count("fill") == len(ledger.fills()) == 21
        closed = views.trades(ledger, views.TradeFilter(is_open=False, limit=100)).items
        trades = [n.text for n in notices if n.kind == "trade"]
        assert len(trades) == len(closed) == 10
        assert trades[0].endswith(f"P&L {closed[0].pnl:+,.2f} net of costs (signal)")
        assert (
            kinds.count("risk") == 1
            and "risk rejected BTC/USD" in notices[kinds.index("risk")].text
        )
        assert watcher.poll() == 0  # nothing new
        operator.set_flag(PAUSE, True, "maintenance")
        assert watcher.poll() == 1 and notices[-1].text == "warning control: flag pause on"
        assert LedgerWatcher(ledger, notices.append).poll() == 0  # a new watcher starts at the end


def test_heartbeats_on_a_clock_and_a_report_when_a_day_ends(ledger_copy: Path) -> None:
    notices: list[Notice] = []
    now = [0.0]
    reports = Reports(heartbeat_seconds=3600.0, clock=lambda: now[0])
    with Ledger(ledger_copy) as ledger:
        watcher = LedgerWatcher(ledger, lambda n: notices.append(n) or True, reports=reports)
        assert watcher.poll() == 0
        now[0] = 3599.0
        assert watcher.poll() == 0
        now[0] = 3600.0
        assert watcher.poll() == 1 and notices[-1].kind == "heartbeat"
        assert notices[-1].text.startswith("heartbeat: status stopped, bars 400")
        curve = ledger.equity_curve()
        before = curve[curve.index < pd.Timestamp("2022-12-31", tz="UTC")]["equity"].iloc[-1]
        change = curve["equity"].iloc[-1] - before
        ledger.record_equity(pd.Timestamp("2023-01-01 00:00", tz="UTC"), 9600.0, 3000.0)
        assert watcher.poll() == 1
    assert notices[-1].kind == "daily"
    assert notices[-1].text == (
        f"daily report: day 2022-12-31: equity {curve['equity'].iloc[-1]:,.2f}, P&L {change:+,.2f}"
    )


def test_notices_reach_telegram_through_the_notifier(ledger_copy: Path) -> None:
    state = BotState()
    state.gate.set()
    with serve(BotApi, state) as url, Ledger(ledger_copy) as ledger:
        bot = TelegramSender(TOKEN, [11], api_url=url)
        notifier = Notifier(bot, NotifyConfig(min_interval=0.0, backoff=0.0)).start()
        watcher = LedgerWatcher(ledger, notifier.notify, from_start=True)
        count = watcher.poll()
        notifier.stop()
        bot.close()
    assert len(state.messages) == count == notifier.delivered
    assert state.messages[0][1].startswith("BUY 0.398693 BTC/USD at 16,729.54")


def test_commands_from_allowed_chats_only(ledger_copy: Path) -> None:
    state = BotState()
    state.gate.set()
    state.updates = [
        update(1, 99, "/kill"),  # a stranger: ignored, not answered
        update(2, 11, "/pause"),
        update(3, 11, "/status"),
        update(4, 11, "/balance"),
        update(5, 11, "/trades"),
        update(6, 11, "/daily"),
        update(7, 11, "hello"),
    ]
    with serve(BotApi, state) as url, Ledger(ledger_copy) as ledger:
        bot = TelegramSender(TOKEN, [11], api_url=url)
        commands = TelegramCommands(bot, ledger)
        assert commands.poll() == 6
        assert commands.poll() == 0 and commands.offset == 8  # confirmed, not answered twice
        bot.close()
        assert ledger.get_flag(PAUSE).on and ledger.get_flag(PAUSE).reason == "telegram chat 11"
        assert not ledger.get_flag(KILL).on
        equity = ledger.equity_summary()
    assert {chat for chat, _ in state.messages} == {11}
    replies = [text for _, text in state.messages]
    assert replies[0].startswith("paused: no new orders")
    assert "paused yes" in replies[1] and "bars 400" in replies[1]
    assert replies[2].startswith(f"equity {equity.last_equity:,.2f}")
    assert len(replies[3].splitlines()) == 5 and "P&L" in replies[3]
    assert replies[4].startswith("day 2022-12-31: equity")
    assert replies[5].startswith("commands: /status")


@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")
def test_apprise_posts_to_a_local_endpoint() -> None:
    received: list[dict[str, object]] = []
    with serve(Webhook, received) as base:
        sender = AppriseSender([base.replace("http://", "json://") + "/hook"])
        notifier = Notifier(sender, NotifyConfig(min_interval=0.0, backoff=0.0)).start()
        notifier.notify(Notice("kill", "kill switch engaged"))
        notifier.stop()
    assert [(r["title"], r["message"]) for r in received] == [("aitrader", "kill switch engaged")]
    assert notifier.delivered == 1


def test_apprise_refuses_an_unknown_scheme_without_echoing_the_url() -> None:
    with pytest.raises(NotifyError, match="scheme 'nosuch'") as error:
        AppriseSender(["nosuch://secret-token@host"])
    assert "secret-token" not in str(error.value)


def test_a_kill_switch_the_risk_manager_engaged_is_told_once(ledger_copy: Path) -> None:
    from aitrader.live.ledger import LedgerRiskStateStore
    from aitrader.risk.state import RiskState

    notices: list[Notice] = []
    with Ledger(ledger_copy) as ledger:
        watcher = LedgerWatcher(ledger, lambda n: notices.append(n) or True)
        store = LedgerRiskStateStore(ledger)
        reason = "drawdown 12.00% ≥ max_drawdown 10.00%"
        store.save(RiskState(kill_switch=True, kill_reason=reason))
        assert watcher.poll() == 1 and watcher.poll() == 0
        store.save(RiskState())  # reset, then engaged by the kill flag: its control event tells
        watcher.poll()
        store.save(RiskState(kill_switch=True, kill_reason="kill flag: manual"))
        assert watcher.poll() == 0
    assert [(n.kind, n.text) for n in notices] == [("kill", f"kill switch engaged: {reason}")]
