"""Restart from the ledger: a paper replay stopped (cleanly, by an exception mid-bar, or by
SIGKILL in a subprocess) and started again on the same ledger ends exactly where an
uninterrupted run ends — same orders (none twice), fills, positions and equity curve."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from live_helpers import BROKER, RISK
from typer.testing import CliRunner

from aitrader.cli import live as live_cli
from aitrader.cli.live import paper_command
from aitrader.data.samples import load_sample
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.errors import ConfigError
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.summary import RunSummary
from aitrader.strategy.base import PLAN_FIELDS

BARS = 2000
SHORT = 700


@functools.cache
def _samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_sample("BTC-USD-1h"), load_sample("ETH-USD-1h")


def frames(symbols: tuple[str, ...] = ("BTC/USD",), bars: int = BARS) -> dict[str, pd.DataFrame]:
    btc, eth = _samples()
    index = btc.index.intersection(eth.index)[-bars:]
    every = {"BTC/USD": btc.loc[index], "ETH/USD": eth.loc[index]}
    return {s: every[s] for s in symbols}


def paper(ledger: Ledger, data: dict[str, pd.DataFrame], max_bars: int | None = None) -> RunSummary:
    n = len(data)
    columns = [
        sma_crossover_targets(f["close"].to_numpy(np.float64), 10, 30, short=True)
        for f in data.values()
    ]
    targets = ArrayFeed(
        np.column_stack(columns),
        np.full((1, n), np.nan),
        np.full((1, n), 0.03),
        np.full((1, n), 0.06),
    )
    feeds = [ReplayFeed(symbol, candles, speed=0) for symbol, candles in data.items()]
    runner = paper_runner(feeds, targets, ledger, BROKER, RISK, {"test": "resume"})
    return asyncio.run(runner.run(max_bars))


def state(ledger: Ledger) -> dict[str, Any]:
    """Everything that must match an uninterrupted run."""
    orders = ledger.orders()
    ids = [o.client_order_id for o in orders]
    assert len(ids) == len(set(ids))  # no order twice
    return {
        "signals": len(pd.read_sql("SELECT id FROM signals", ledger.engine)),
        "orders": sorted((o.client_order_id, o.qty, o.status.value, o.filled_qty) for o in orders),
        "fills": ledger.fills().to_dict("records"),
        "positions": ledger.positions(),
        "equity": ledger.equity_curve().reset_index().to_dict("records"),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Uninterrupted runs: one symbol (2000 and 700 bars) and two symbols (800 bars)."""
    out = {}
    runs = [("one", frames()), ("short", frames(bars=SHORT))]
    for key, data in [*runs, ("two", frames(("BTC/USD", "ETH/USD"), 800))]:
        with Ledger(tmp_path_factory.mktemp(key) / "ledger.db") as ledger:
            summary = paper(ledger, data)
            assert summary.resumed_from == 0 and summary.fills > 50
            out[key] = {**state(ledger), "summary": summary}
    return out


def check(ledger: Ledger, expected: dict[str, Any], summary: RunSummary) -> None:
    got = state(ledger)
    for key in ("signals", "orders", "fills", "positions", "equity"):
        assert got[key] == expected[key], key
    assert summary.equity == expected["summary"].equity  # bit-identical
    assert summary.fills == expected["summary"].fills
    assert summary.bars == expected["summary"].bars
    assert not [o for o in ledger.orders() if o.status.is_open]


@pytest.mark.parametrize(("key", "stop_at"), [("one", 1234), ("two", 555)])
def test_stop_and_resume_in_process(
    reference: dict[str, dict[str, Any]], key: str, stop_at: int, tmp_path: Path
) -> None:
    data = frames() if key == "one" else frames(("BTC/USD", "ETH/USD"), 800)
    with Ledger(tmp_path / "ledger.db") as ledger:
        first = paper(ledger, data, max_bars=stop_at)
        assert first.bars == stop_at
    with Ledger(tmp_path / "ledger.db") as ledger:
        summary = paper(ledger, data)
        assert summary.resumed_from == stop_at
        assert summary.resumed_after == data["BTC/USD"].index[stop_at - 1]
        check(ledger, reference[key], summary)
        assert [e.message for e in ledger.events("runner")][-3:] == [
            f"resumed after bar {stop_at} ({data['BTC/USD'].index[stop_at - 1]})",
            "start",
            "stop",
        ]


class Crash(Exception):
    pass


@pytest.mark.parametrize(("write", "after"), [("fill", 7), ("signal", 5), ("intent", 12)])
def test_a_bar_interrupted_half_way_is_redone_once(
    reference: dict[str, dict[str, Any]], write: str, after: int, tmp_path: Path
) -> None:
    """The process dies right after a bar's ``after``-th signal, intent or fill reached the
    ledger, before the bar's checkpoint: the resumed run redoes that bar, recording nothing
    twice."""
    data = frames(bars=SHORT)
    name = f"record_{write}"
    with Ledger(tmp_path / "ledger.db") as ledger:
        real = getattr(ledger, name)
        count = 0

        def failing(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            done = real(*args, **kwargs)
            if count == after:
                raise Crash("killed mid-bar")
            return done

        setattr(ledger, name, failing)
        with pytest.raises(Crash):
            paper(ledger, data)
        done = len(ledger.equity_curve())
        signals = pd.read_sql("SELECT time, symbol FROM signals", ledger.engine)
    with Ledger(tmp_path / "ledger.db") as ledger:
        summary = paper(ledger, data)
        assert summary.resumed_from == done > 0
        check(ledger, reference["short"], summary)
        signals = pd.read_sql("SELECT time, symbol FROM signals", ledger.engine)
        assert not signals.duplicated().any()


def test_a_ledger_of_another_run_is_refused(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        paper(ledger, frames(bars=300), max_bars=100)
        other = r"holds another run \(the risk or cost settings \(config file\) or the replayed"
        with pytest.raises(ConfigError, match=other):
            paper(ledger, frames(bars=400))
        done = paper(ledger, frames(bars=300))
        assert done.resumed_from == 100 and done.bars == 300
        again = paper(ledger, frames(bars=300))  # finished: nothing left to do
        assert again.resumed_from == 300 and again.bars == 300


# -- crash recovery: SIGKILL a paper replay in a subprocess --------------------------------


def _progress(path: Path) -> int:
    """Bars checkpointed so far (read with plain sqlite3 while the runner writes)."""
    try:
        raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = raw.execute("SELECT value FROM state WHERE name = 'runner'").fetchone()
        finally:
            raw.close()
    except sqlite3.OperationalError:
        return 0
    return 0 if row is None else int(json.loads(row[0])["bars"])


def _run(path: Path) -> subprocess.Popen[bytes]:
    shared = str(Path(__file__).parents[1] / "data")  # live_helpers, as pytest's pythonpath
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([shared, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, __file__, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _kill_at(proc: subprocess.Popen[bytes], path: Path, bars: int, jitter: float) -> int:
    """SIGKILL once the run passed ``bars`` (plus a random few ms), within 60 s."""
    deadline = time.monotonic() + 60
    while _progress(path) < bars and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(jitter)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return _progress(path)


@pytest.mark.slow
def test_sigkill_at_three_points_then_resume(
    reference: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Three replays on their own ledgers, SIGKILLed in parallel at three points (a random
    few ms after a checkpoint, so mostly mid-bar); each ledger is then resumed to the end."""
    rng = random.Random(7)
    points = [300, 1000, 1700]
    paths = [tmp_path / f"kill{n}.db" for n in range(len(points))]
    procs = [_run(path) for path in paths]
    jitters = [rng.uniform(0.0, 0.01) for _ in points]
    with ThreadPoolExecutor(len(points)) as pool:  # watched at once: each run is fast
        killed = list(pool.map(_kill_at, procs, paths, points, jitters))
    data = frames()
    for proc, path, done, bars in zip(procs, paths, killed, points, strict=True):
        assert proc.returncode == -signal.SIGKILL
        assert bars <= done < BARS
        with Ledger(path) as ledger:
            assert len(ledger.equity_curve()) == done  # snapshot and checkpoint in step
            summary = paper(ledger, data)
            assert summary.resumed_from == done
            check(ledger, reference["one"], summary)
            assert len(ledger.orders()) == len(reference["one"]["orders"])
            messages = [e.message for e in ledger.events("runner")]
            assert any(m.startswith(f"resumed after bar {done} ") for m in messages)


# -- the CLI --------------------------------------------------------------------------------

app = typer.Typer()
app.command("paper")(paper_command)
app.command("noop")(lambda: None)  # two commands: the first argument names one
cli = CliRunner()


def test_cli_resumes_the_same_replay_and_refuses_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"AITRADER__DATA__DIR": str(tmp_path / "store")}
    path, full = tmp_path / "paper.db", tmp_path / "full.db"
    args = ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "300", "--ledger"]
    done = cli.invoke(app, [*args, str(full)], env=env)
    assert done.exit_code == 0, done.output
    real = live_cli.paper_runner

    def stopping(*a: Any, **k: Any) -> Any:  # a run interrupted after 120 bars
        runner = real(*a, **k)
        run = runner.run
        runner.run = lambda max_bars=None: run(120)  # type: ignore[method-assign]
        return runner

    with monkeypatch.context() as patch:
        patch.setattr(live_cli, "paper_runner", stopping)
        stopped = cli.invoke(app, [*args, str(path), "--json"], env=env)
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["bars"] == 120
    resumed = cli.invoke(app, [*args, str(path)], env=env)
    assert resumed.exit_code == 0, resumed.output
    after = load_sample("BTC-USD-1h").index[-300:][119]
    assert f"resumed from bar 121 of 300 (after {after})" in resumed.stdout
    with Ledger(path) as ledger, Ledger(full) as reference:
        assert ledger.equity_curve().equals(reference.equity_curve())
        assert ledger.fills().equals(reference.fills())
    other = cli.invoke(
        app,
        ["paper", "--replay", "sample:BTC-USD-1h", "--bars", "400", "--ledger", str(path)],
        env=env,
    )
    assert isinstance(other.exception, ConfigError)
    assert "holds another run (bars: ledger 300, now 400)" in str(other.exception)


def plan_feed(data: dict[str, pd.DataFrame]) -> ArrayFeed:
    """The SMA crossing as entries with trade plans: stop 3 %, half at TP1 (+1.5 %), the rest
    at TP2 (+4 %), break-even after TP1, a 2 % trailing stop and a 30-bar time stop."""
    close = next(iter(data.values()))["close"].to_numpy(np.float64)
    state = sma_crossover_targets(close, 10, 30, short=True)
    fraction = np.where(np.r_[np.nan, state[:-1]] != state, state, np.nan).reshape(-1, 1)
    plan = np.full((len(close), len(PLAN_FIELDS), 1), np.nan)
    for field, value in (("tp1_share", 0.5), ("tp2", 0.04), ("break_even", 1.0),
                         ("trail", 0.02), ("time_stop", 30.0)):  # fmt: skip
        plan[:, PLAN_FIELDS.index(field)] = value
    one = np.full((1, 1), np.nan)
    return ArrayFeed(fraction, one, np.full((1, 1), 0.03), np.full((1, 1), 0.015), plan)


def test_trade_plans_stop_and_resume_in_process(tmp_path: Path) -> None:
    """Stopped mid-plan (after TP1, before its last exit) and resumed: the plan's state and
    the broker's levels come back from the checkpoint; every order and fill as uninterrupted."""
    data = frames(bars=SHORT)

    def run(ledger: Ledger, max_bars: int | None = None) -> RunSummary:
        feeds = [ReplayFeed(symbol, candles, speed=0) for symbol, candles in data.items()]
        runner = paper_runner(feeds, plan_feed(data), ledger, BROKER, RISK, {"test": "plans"})
        return asyncio.run(runner.run(max_bars))

    with Ledger(tmp_path / "reference.db") as ledger:
        summary = run(ledger)
        expected = {**state(ledger), "summary": summary}
        reasons = ledger.fills()["reason"].tolist()
    assert reasons.count("take_profit") >= 4 and "stop_loss" in reasons
    # stop right after the bars of the first TP1 fills: their plans run on at break-even
    index = data["BTC/USD"].index
    tp1_bars = [
        int(index.get_loc(fill["time"])) + 1
        for fill, reason in zip(expected["fills"], reasons, strict=True)
        if reason == "take_profit"
    ]
    for stop_at in tp1_bars[:3]:
        path = tmp_path / f"stop{stop_at}.db"
        with Ledger(path) as ledger:
            assert run(ledger, stop_at).bars == stop_at
        with Ledger(path) as ledger:
            resumed = run(ledger)
            assert resumed.resumed_from == stop_at
            check(ledger, expected, resumed)


if __name__ == "__main__":  # the process the crash test kills: a paper replay on a ledger
    with Ledger(sys.argv[1]) as _ledger:
        paper(_ledger, frames())
