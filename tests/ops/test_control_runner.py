"""A control call through the API changes a real paper runner's behaviour from the next bar on:
the runner (paper replay of the bundled BTC-USD sample, SMA baseline, ledger on disk) and the
API (uvicorn on 127.0.0.1, its own connection to the same ledger file) run side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from ops_helpers import SYMBOL, Hook, app_for, client, replay_run, sample_candles

from aitrader.live.ledger import Ledger
from aitrader.live.runner import Runner
from aitrader.ops.server import BackgroundServer

BARS = 300


def candles() -> pd.DataFrame:
    return sample_candles(BARS)


def run(path: Path, before_bar: Hook | None = None) -> Ledger:
    """A paper run over the sample; ``before_bar(runner, time)`` runs before each bar."""
    ledger = Ledger(path)
    summary = replay_run(ledger, BARS, before_bar)
    assert summary.bars == BARS
    return ledger


def decided_at(ledger: Ledger) -> list[pd.Timestamp]:
    return sorted(set(ledger.risk_decisions()["time"]))


def test_pause_resume_and_kill_through_the_api_act_on_the_next_bar(tmp_path: Path) -> None:
    with run(tmp_path / "reference.db") as reference:
        decisions = [t for t in decided_at(reference) if t > candles().index[100]]
    assert len(decisions) >= 3
    pause_at, later = decisions[0], decisions[1:]
    index = list(candles().index)
    resume_at = index[index.index(pause_at) + 1]
    path = tmp_path / "controlled.db"
    path.touch()
    calls: list[tuple[pd.Timestamp, str]] = []
    with Ledger(path) as api_ledger, BackgroundServer(app_for(api_ledger)) as server:
        http = client(server.url)

        def operator(runner: Runner, time: pd.Timestamp) -> None:
            action = None
            if time == pause_at:
                action = "pause"
            elif time == resume_at:
                action = "resume"
            elif time > later[-1] and runner.policy.portfolio.positions[SYMBOL].qty != 0:
                action = "kill" if not any(a == "kill" for _, a in calls) else None
            if action is not None:
                response = http.post(f"/control/{action}", json={"reason": f"test {action}"})
                assert response.status_code == 200, response.text
                calls.append((time, action))

        with run(path, operator) as controlled:
            http.close()
            decided = decided_at(controlled)
            orders = controlled.orders()
            messages = [e.message for e in controlled.events("control")]
    assert [a for _, a in calls] == ["pause", "resume", "kill"]
    killed = calls[2][0]
    # the bar the pause arrived before is not decided; after the resume the strategy decides again
    assert pause_at not in decided and any(resume_at < t < killed for t in decided)
    assert f"trading paused at bar {pause_at} (test pause)" in messages
    assert f"trading resumed at bar {resume_at}" in messages
    flatten = [o for o in orders if o.reason == "kill_switch"]
    assert len(flatten) == 1 and flatten[0].reduce_only
    assert flatten[0].intent_at == index[index.index(killed) + 1]  # filled at the next open
    assert controlled.positions()[SYMBOL].qty == 0.0
    assert not [o for o in orders if o.intent_at > flatten[0].intent_at]
