"""``aitrader dashboard`` serves Streamlit on 127.0.0.1 and takes its server down with it when
it is terminated (SIGTERM, as ``docker stop`` sends): no server outlives the command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dashboard_helpers import ENTRY, free_port, wait_http


def _down(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
        except httpx.HTTPError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigterm_stops_the_streamlit_server(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRADER")}
    env["AITRADER__DATA__DIR"] = str(tmp_path)
    command = [sys.executable, "-c", ENTRY, "dashboard", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    health = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        wait_http(health, process)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert "no API token" in err and f"dashboard on http://127.0.0.1:{port}" in err
    assert process.returncode == 0, err
    assert _down(health), "the Streamlit server outlived `aitrader dashboard`"
