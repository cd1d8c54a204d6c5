"""Fixtures of the dashboard tests: a real paper run's ledger (``aitrader paper`` on the bundled
BTC-USD sample), the API served over it by uvicorn on a free 127.0.0.1 port, a small trained
model bundle, and the environment that points the dashboard at them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import TOKEN, app_for, paper_replay

from aitrader.live.ledger import Ledger
from aitrader.ops.server import BackgroundServer

BARS = 1500


@pytest.fixture(scope="session")
def paper_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1,500-bar paper run (SMA baseline, costs on), made once per session."""
    return paper_replay(tmp_path_factory.mktemp("paper"), BARS)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic bundle on two fast features, trained on BTC hours before the paper run."""
    from dashboard_helpers import small_bundle

    return small_bundle(tmp_path_factory.mktemp("bundle") / "logistic")


@pytest.fixture
def api(paper_ledger: Path, tmp_path: Path) -> Iterator[tuple[str, Ledger]]:
    """The API over a private copy of the paper ledger (tests write flags): URL and ledger."""
    shutil.copy(paper_ledger, tmp_path / "run.db")
    with Ledger(tmp_path / "run.db") as ledger, BackgroundServer(app_for(ledger)) as server:
        yield server.url, ledger


@pytest.fixture
def dashboard_env(
    api: tuple[str, Ledger], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Ledger]:
    """The dashboard pointed at the API (token set) and an empty store of its own."""
    monkeypatch.setenv("AITRADER_DASHBOARD_API_URL", api[0])
    monkeypatch.setenv("AITRADER_DASHBOARD_TOKEN", TOKEN)
    monkeypatch.delenv("AITRADER_DASHBOARD_BUNDLE", raising=False)
    monkeypatch.setenv("AITRADER__DATA__DIR", str(tmp_path / "store"))
    monkeypatch.delenv("AITRADER_CONFIG", raising=False)
    return api
