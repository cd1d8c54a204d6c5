"""Every dashboard page in a real headless Chromium (Debian's ``chromium`` driven by selenium
through ``chromedriver``) against ``aitrader serve`` over a paper replay's ledger and
``aitrader dashboard`` — both real processes on 127.0.0.1. One screenshot per page goes to
``$AITRADER_ARTEFACTS/dashboard`` (default: ``build/artefacts/dashboard``); no page may show an
exception."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import PAGES, chromium, open_page, settled, stack, via_sidebar
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
ERRORS = ("Traceback", "Error:", "StreamlitAPIException")


@pytest.fixture(scope="module")
def artefacts() -> Path:
    root = Path(os.environ.get("AITRADER_ARTEFACTS", ROOT / "build" / "artefacts"))
    folder = root / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dashboard(
    paper_ledger: Path, bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``aitrader serve`` over the paper ledger and ``aitrader dashboard`` over that API."""
    store = tmp_path_factory.mktemp("store")
    env = {k: v for k, v in os.environ.items() if k != "AITRADER_CONFIG"}
    with stack(paper_ledger, bundle_dir, env | {"AITRADER__DATA__DIR": str(store)}) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_in_chromium_without_an_exception(
    name: str, dashboard: str, browser: Any, artefacts: Path
) -> None:
    text = open_page(browser, dashboard, name)
    if name == "backtest":
        browser.find_element(By.XPATH, "//button[.//p[text()='Run backtest']]").click()
        WebDriverWait(browser, 180, poll_frequency=0.25).until(
            lambda d: settled(d, "Backtest explorer", "total return", 1)
        )
        text = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(artefacts / f"{name}.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not [e for e in ERRORS if e in text], text[:2000]
    if name == "overview":
        assert re.search(r"Equity\s+[\d,]+\.\d\d", text), text[:1000]


@pytest.mark.slow
def test_the_sidebar_moves_between_pages(dashboard: str, browser: Any) -> None:
    open_page(browser, dashboard, "overview")
    for name in ("trades", "data", "overview"):
        via_sidebar(browser, name)
        assert f"page={name}" in browser.current_url
