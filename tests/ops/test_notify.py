"""The notifier against a local server speaking the Telegram Bot API's ``sendMessage``: in
order, de-duplicated, retried after a failure, and never blocking the caller."""

from __future__ import annotations

from bot_api import TOKEN, BotApi, BotState
from local_http import serve

from aitrader.ops.notify import Notice, Notifier, NotifyConfig, TelegramSender

FAST = NotifyConfig(min_interval=0.0, dedupe_seconds=300.0, retries=2, backoff=0.0)


def test_notices_arrive_in_order_once_each_after_retries() -> None:
    state = BotState(fail_next=2)
    state.gate.set()
    with serve(BotApi, state) as url:
        sender = TelegramSender(TOKEN, [11, 22], api_url=url)
        notifier = Notifier(sender, FAST).start()
        notifier.notify(Notice("fill", "filled 0.1 BTC at 16,500"))
        notifier.notify(Notice("fill", "filled 0.1 BTC at 16,500"))  # a repeat: dropped
        notifier.notify(Notice("kill", "kill switch engaged", key="kill"))
        notifier.stop()
        sender.close()
    assert state.messages == [
        (11, "filled 0.1 BTC at 16,500"),
        (22, "filled 0.1 BTC at 16,500"),
        (11, "kill switch engaged"),
        (22, "kill switch engaged"),
    ]
    assert notifier.delivered == 2 and notifier.failed == 0
    assert all(p == f"/bot{TOKEN}/sendMessage" for p in state.paths)


def test_notify_never_waits_for_a_stuck_server_and_drops_when_full() -> None:
    state = BotState()  # the gate is closed: every send hangs until the test opens it
    with serve(BotApi, state) as url:
        sender = TelegramSender(TOKEN, [11], api_url=url)
        config = NotifyConfig(min_interval=0.0, max_queue=2, retries=0, backoff=0.0)
        notifier = Notifier(sender, config).start()
        accepted = [notifier.notify(Notice("heartbeat", f"beat {i}")) for i in range(6)]
        assert accepted.count(False) >= 3 and notifier.dropped == accepted.count(False)
        state.gate.set()
        notifier.stop()
        sender.close()
    assert [t for _, t in state.messages] == [f"beat {i}" for i in range(6) if accepted[i]][:3]


def test_a_failing_channel_is_logged_and_the_worker_goes_on() -> None:
    state = BotState(fail_next=100)
    state.gate.set()
    with serve(BotApi, state) as url:
        sender = TelegramSender(TOKEN, [11], api_url=url)
        notifier = Notifier(sender, FAST).start()
        notifier.notify(Notice("error", "first"))
        notifier.notify(Notice("error", "second"))
        notifier.stop()
        sender.close()
    assert notifier.failed == 2 and notifier.delivered == 0
    assert len(state.paths) == 2 * (FAST.retries + 1)
