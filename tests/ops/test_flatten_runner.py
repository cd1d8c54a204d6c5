"""The flatten control through the API on a real paper runner (replay of the bundled BTC-USD
sample, SMA baseline, ledger on disk, uvicorn on 127.0.0.1): every position closes once at the
next bar through the risk-checked path, the run stays flat until resume, and a restart neither
repeats nor forgets the flatten."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from ops_helpers import SYMBOL, app_for, client, replay_run, sample_candles

from aitrader.live.ledger import Ledger
from aitrader.live.runner import Runner
from aitrader.ops.server import BackgroundServer

BARS = 300


def candles() -> pd.DataFrame:
    return sample_candles(BARS)


def held_from(ledger: Ledger) -> pd.Timestamp:
    """A bar (after the first 100) at whose close the reference run holds a position that it
    keeps for at least two more bars."""
    fills = ledger.fills()
    times = list(candles().index)
    for entry, exit_ in zip(fills["time"].iloc[::2], fills["time"].iloc[1::2], strict=False):
        if entry > times[100] and times.index(exit_) - times.index(entry) > 3:
            return times[times.index(entry) + 1]
    raise AssertionError("the reference run holds no position long enough")


def test_flatten_closes_once_within_a_bar_stays_flat_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "reference.db") as reference:
        replay_run(reference, BARS)
        flatten_at = held_from(reference)
    times = list(candles().index)
    at = times.index(flatten_at)
    resume_at = times[at + 40]
    path = tmp_path / "bot.db"
    path.touch()
    calls: list[str] = []
    with Ledger(path) as api_ledger, BackgroundServer(app_for(api_ledger)) as server:
        http = client(server.url)

        def operator(runner: Runner, time: pd.Timestamp) -> None:
            action = {flatten_at: "flatten", resume_at: "resume"}.get(time)
            if action is not None:
                response = http.post(f"/control/{action}", json={"reason": f"test {action}"})
                assert response.status_code == 200, response.text
                calls.append(action)

        with Ledger(path) as ledger:  # stopped 5 bars after the flatten, then restarted
            first = replay_run(ledger, BARS, operator, max_bars=at + 5)
            assert ledger.positions()[SYMBOL].qty == 0.0
        with Ledger(path) as ledger:
            second = replay_run(ledger, BARS, operator)
            orders, positions = ledger.orders(), ledger.positions()
            status = http.get("/status").json()
            messages = [e.message for e in ledger.events("control")]
        http.close()
    assert calls == ["flatten", "resume"] and first.bars == at + 5 and second.resumed_from == at + 5
    flat = [o for o in orders if o.reason == "flatten"]
    assert len(flat) == 1 and flat[0].reduce_only  # once, never repeated after the restart
    # decided at the close of the bar the flag was set before, filled at the next open
    assert flat[0].intent_at == times[at + 1]
    assert [m for m in messages if m.startswith("flattening")] == [
        f"flattening every position at bar {flatten_at} (test flatten)"
    ]
    # flat and silent from the flatten until the resume; the strategy trades again after it
    between = [o for o in orders if flatten_at < o.intent_at <= resume_at and o not in flat]
    assert between == []
    assert [o for o in orders if o.intent_at > resume_at]
    assert status["flatten"] is False and not status["paused"]
    assert second.bars == BARS and positions[SYMBOL].realised_pnl != 0.0
