"""Two processes opening the same new ledger at once (a bot and ``aitrader status``, or two
workers) both end with the current schema: each migration is applied once, by whichever gets
the write lock first, and the other sees it done instead of failing on it."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import sqlalchemy as sa

from aitrader.live import schema as t
from aitrader.live.db import create_ledger_engine, migrate
from aitrader.live.schema import CURRENT_VERSION

ROUNDS, WORKERS = 6, 4


def _open(path: str, start: object, out: object) -> None:
    engine = create_ledger_engine(path)
    start.wait(10)  # type: ignore[attr-defined]
    try:
        out.put(("ok", migrate(engine)))  # type: ignore[attr-defined]
    except Exception as error:  # reported to the test
        out.put(("error", f"{type(error).__name__}: {error}"))  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_processes_migrating_one_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")  # the workers run this module's function
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"race{round_}.db")
        start, out = ctx.Barrier(WORKERS), ctx.Queue()
        workers = [ctx.Process(target=_open, args=(path, start, out)) for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(30)
        assert results == [("ok", CURRENT_VERSION)] * WORKERS, results
        engine = create_ledger_engine(path)
        with engine.connect() as conn:
            versions = conn.execute(sa.select(t.schema_version.c.version)).scalars().all()
        engine.dispose()
        assert sorted(versions) == list(range(1, CURRENT_VERSION + 1))
