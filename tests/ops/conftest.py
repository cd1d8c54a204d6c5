"""Fixtures of the ops tests: a real paper run's ledger (made by ``aitrader paper`` on the
bundled BTC-USD sample) and the API served over it by a real uvicorn on a free 127.0.0.1 port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import TOKEN_HASH, app_for, paper_replay

from aitrader.live.ledger import Ledger
from aitrader.ops.server import BackgroundServer

BARS = 400
assert TOKEN_HASH


@pytest.fixture(scope="session")
def paper_ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 400-bar paper run (SMA baseline, costs on), made once per session."""
    return paper_replay(tmp_path_factory.mktemp("paper"), BARS)


@pytest.fixture
def ledger_copy(paper_ledger_file: Path, tmp_path: Path) -> Path:
    """A private copy of the paper ledger (for tests that write flags)."""
    path = tmp_path / "ledger.db"
    shutil.copy(paper_ledger_file, path)
    return path


@pytest.fixture
def api(ledger_copy: Path) -> Iterator[tuple[str, Ledger]]:
    """The API over a copy of the paper ledger: its base URL and the ledger."""
    with Ledger(ledger_copy) as ledger, BackgroundServer(app_for(ledger)) as server:
        yield server.url, ledger
