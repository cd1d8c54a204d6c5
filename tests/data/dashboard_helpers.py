"""Shared pieces of the dashboard tests and benchmark: a small trained bundle, free ports,
processes started and stopped by their own ids, and waiting for an HTTP endpoint."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from ops_helpers import TOKEN, TOKEN_HASH

from aitrader.config import CostsConfig
from aitrader.data.samples import load_sample
from aitrader.features.spec import FeaturesConfig, FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig

FEATURES = FeaturesConfig(preset="none", extra=(FeatureSpec(name="rsi"), FeatureSpec(name="roc")))


def small_bundle(path: Path) -> Path:
    """A logistic bundle on RSI and ROC (binary label), trained on BTC hours 8,000 to 3,000
    bars before the sample's end: the bars after it are out of its training window."""
    from aitrader.models.registry import save_bundle
    from aitrader.validation.experiment import ExperimentConfig, train_bundle
    from aitrader.validation.walkforward import prepare

    btc: pd.DataFrame = load_sample("BTC-USD-1h")
    labels = LabelConfig(kind="binary")
    prepared = prepare(btc.iloc[-8000:-3000], FEATURES, labels, CostsConfig())
    config = ExperimentConfig(features=FEATURES, labels=labels, models=ModelConfig(kind="logistic"))
    return save_bundle(train_bundle(prepared, config, "BTC/USD", "1h"), path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until ``url`` answers 200; RuntimeError if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process we started (by its own id), then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def trade_ledger(path: Path, trades: int) -> Path:
    """A ledger of ``trades`` round trips on the bundled BTC-USD hours, written through the
    ledger's writer API (intent → submitted → fill) from a real backtest's fills (in and out
    every other bar, costs on), with an equity snapshot at every fill."""
    import numpy as np

    from aitrader.engine.backtest import RunOptions, run_backtest
    from aitrader.engine.types import Fill, Liquidity, Order
    from aitrader.live.ledger import Ledger

    btc = load_sample("BTC-USD-1h").iloc[-(4 * trades + 2000) :]
    target = np.where(np.arange(len(btc)) % 4 < 2, 0.5, 0.0)
    result = run_backtest({"BTC/USD": btc}, target, options=RunOptions(timeframe="1h"))
    last_exit = result.trades["exit_time"].iloc[trades - 1]
    fills = result.fills[result.fills["time"] <= last_exit]
    equity = result.equity
    signed = fills["qty"] * fills["side"]
    ordered = signed.groupby(fills["client_order_id"]).sum()  # partial fills: one order
    with Ledger(path) as ledger:
        for n, row in enumerate(fills.itertuples(index=False)):
            qty = float(row.qty) * int(row.side)
            coid = str(row.client_order_id)
            order = Order("BTC/USD", coid, float(ordered[coid]), reason=str(row.reason))
            ledger.record_intent(order, time=row.time)
            ledger.mark_submitted(coid)
            fill = Fill(
                row.time,
                "BTC/USD",
                qty,
                float(row.price),
                float(row.fee),
                float(row.slippage),
                Liquidity(row.liquidity),
                coid,
                str(row.reason),
            )
            ledger.record_fill(fill, f"bench:{n}")
            ledger.record_equity(row.time, float(equity.loc[row.time]), 0.0)
    return path


ENTRY = "from aitrader.cli import main; main()"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGES = {  # page: (its title, text it shows once its data is in, plotly charts it draws)
    "overview": ("Overview", "Equity", 1),
    "price": ("Price, signals and fills", "buy fills", 1),
    "trades": ("Trades", "Win rate (closed)", 0),
    "model": ("Model", "Scored on", 4),
    "backtest": ("Backtest explorer", "Choose a strategy", 0),
    "data": ("Data: coverage and quality", "bars", 1),
}


@contextmanager
def stack(ledger: Path, bundle: Path, env: dict[str, str]) -> Iterator[str]:
    """``aitrader serve`` over ``ledger`` and ``aitrader dashboard`` over it (real processes on
    free 127.0.0.1 ports, stopped by their ids at the end): the dashboard's URL."""
    env = env | {"AITRADER__API__TOKEN_HASH": TOKEN_HASH}
    api_port, port = free_port(), free_port()
    serve = [sys.executable, "-c", ENTRY, "serve", "--ledger", str(ledger)]
    api = subprocess.Popen([*serve, "--port", str(api_port)], env=env)
    url = f"http://127.0.0.1:{api_port}"
    show = ["dashboard", "--api-url", url, "--port", str(port), "--model", str(bundle)]
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


@contextmanager
def chromium(width: int = 1600, height: int = 2300) -> Iterator[Any]:
    """Debian's chromium, headless, driven by selenium through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def settled(driver: Any, title: str, shows: str, charts: int) -> bool:
    """The page's title and data are in, its script has finished and its charts are drawn."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:  # Streamlit replaces elements while it renders: a vanished one means "not yet"
        body = driver.find_element(By.TAG_NAME, "body").text
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        spinning = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        drawn = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
        plots = {d.find_element(By.XPATH, "./..").id for d in drawn}
    except StaleElementReferenceException:
        return False
    return title in body and shows in body and not running and not spinning and len(plots) >= charts


def open_page(driver: Any, url: str, name: str, timeout: float = 120) -> str:
    """Load page ``name`` and wait until it has :func:`settled`; its visible text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    title, shows, charts = PAGES[name]
    driver.get(f"{url}/?page={name}")
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: settled(d, title, shows, charts)
    )
    return str(driver.find_element(By.TAG_NAME, "body").text)


def via_sidebar(driver: Any, name: str, timeout: float = 120) -> None:
    """Switch to page ``name`` in the sidebar (no page load) and wait until it settled."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    title, shows, charts = PAGES[name]
    path = f"//section[@data-testid='stSidebar']//label[.//p[text()='{name.capitalize()}']]"
    driver.find_element(By.XPATH, path).click()
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: settled(d, title, shows, charts)
    )
