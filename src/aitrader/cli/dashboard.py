"""``aitrader dashboard``: the web dashboard (Streamlit) over a running API. Streamlit is
imported only by the dashboard's own process, never by the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import typer

from aitrader.cli.common import err_console, settings, state
from aitrader.errors import ConfigError

TOKEN_ENV = "AITRADER_API_TOKEN"


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """``streamlit run`` of ``app`` on ``host:port``, headless, no usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def dashboard_command(
    ctx: typer.Context,
    api_url: str = typer.Option(
        None, "--api-url", help="The monitoring API (default: http://127.0.0.1:<api.port>)."
    ),
    token: str = typer.Option(
        None, "--token", envvar=TOKEN_ENV, help=f"The API's bearer token (better: ${TOKEN_ENV})."
    ),
    model: Path | None = typer.Option(  # noqa: B008
        None, "--model", "-m", help="A model bundle for the model page."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address of the dashboard."),
    port: int = typer.Option(8501, "--port", help="TCP port of the dashboard."),
) -> None:
    """Serve the web dashboard: overview and controls, price with signals and fills, trades,
    model quality, a backtest explorer and data quality.

    It reads the run through the API (`aitrader serve`) with its token, and the data store and
    model bundles read-only. Needs the dashboard extra: pip install 'aitrader[dashboard]'.

    Example: AITRADER_API_TOKEN=... aitrader dashboard --api-url http://host:8080
    """
    from aitrader.dashboard.config import DashboardConfig

    if find_spec("streamlit") is None:
        raise ConfigError("the dashboard needs Streamlit: pip install 'aitrader[dashboard]'")
    cfg = settings(ctx)
    url = api_url or f"http://127.0.0.1:{cfg.api.port}"
    if not token:
        err_console.print(f"no API token (--token or ${TOKEN_ENV}): the run pages will say so")
    config = DashboardConfig(url, token or "", model)
    env = os.environ | config.env()
    config_path = state(ctx).config_path
    if config_path is not None:
        env["AITRADER_CONFIG"] = str(config_path.resolve())
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    err_console.print(f"dashboard on http://{host}:{port} (API: {url})", soft_wrap=True)
    code = run_child(streamlit_command(app, host, port), env)
    if code not in (0, -2, -15):
        raise typer.Exit(code)


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` until it ends; a SIGTERM to this process (``docker stop``, a test's
    ``terminate``) is passed on to it, so that no Streamlit server outlives its command."""
    child = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.terminate()
            child.wait(30)
