"""Every dashboard page in a real headless Chromium (Debian's ``chromium`` driven by selenium
through ``chromedriver``) against ``aitrader serve`` over a paper replay's ledger and
``aitrader dashboard`` — both real processes on 127.0.0.1. One screenshot per page goes to
``$AITRADER_ARTEFACTS/dashboard`` (default: ``build/artefacts/dashboard``); no page may show an
exception."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import free_port, stop, wait_http
from ops_helpers import TOKEN, TOKEN_HASH
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ENTRY = "from aitrader.cli import main; main()"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
PAGES = {  # page: (its title, text it shows once its data is in, plotly charts it draws)
    "overview": ("Overview", "Equity", 1),
    "price": ("Price, signals and fills", "buy fills", 1),
    "trades": ("Trades", "Win rate (closed)", 0),
    "model": ("Model", "Scored on", 4),
    "backtest": ("Backtest explorer", "Choose a strategy", 0),
    "data": ("Data: coverage and quality", "bars", 1),
}
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
    env = {**os.environ, "AITRADER__DATA__DIR": str(store), "AITRADER__API__TOKEN_HASH": TOKEN_HASH}
    env.pop("AITRADER_CONFIG", None)
    api_port, port = free_port(), free_port()
    serve = [sys.executable, "-c", ENTRY, "serve", "--ledger", str(paper_ledger)]
    api = subprocess.Popen([*serve, "--port", str(api_port)], env=env)
    url = f"http://127.0.0.1:{api_port}"
    show = ["dashboard", "--api-url", url, "--port", str(port), "--model", str(bundle_dir)]
    web = subprocess.Popen(
        [sys.executable, "-c", ENTRY, *show], env=env | {"AITRADER_API_TOKEN": TOKEN}
    )
    try:
        wait_http(f"{url}/health", api)
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", web)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(web)
        stop(api)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1600,2300")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def settled(driver: webdriver.Chrome, title: str, shows: str, charts: int) -> bool:
    """The page's title and data are in, its script has finished and its charts are drawn."""
    body = driver.find_element(By.TAG_NAME, "body").text
    running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
    spinning = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
    drawn = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
    return (
        title in body
        and shows in body
        and not running
        and not spinning
        and len({d.find_element(By.XPATH, "./..").id for d in drawn}) >= charts
    )


def open_page(driver: webdriver.Chrome, url: str, name: str) -> str:
    """Load ``name``, wait until it has settled (≤ 120 s); its visible text."""
    title, shows, charts = PAGES[name]
    driver.get(f"{url}/?page={name}")
    WebDriverWait(driver, 120, poll_frequency=0.25).until(
        lambda d: settled(d, title, shows, charts)
    )
    return str(driver.find_element(By.TAG_NAME, "body").text)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_in_chromium_without_an_exception(
    name: str, dashboard: str, browser: webdriver.Chrome, artefacts: Path
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
