"""``aitrader risk status | reset``: show or explicitly clear the persisted kill switch.

The kill switch lives in the risk state file (``risk.state_path`` in the config, or
``--state PATH``); it survives restarts and clears only through ``aitrader risk reset``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table
from aitrader.errors import ConfigError
from aitrader.risk.limits import RiskManager
from aitrader.risk.state import JsonRiskStateStore, RiskState

app = typer.Typer(help="Risk state: the persisted kill switch and counters.", no_args_is_help=True)

StateOption = typer.Option(
    None, "--state", help="Risk state JSON file (default: risk.state_path from the config)."
)


NOT_PERSISTED = (
    "no risk state file configured: runs keep the kill switch and counters in memory only; "
    "set risk.state_path in the config (or pass --state) to persist them"
)


def _path(ctx: typer.Context, state: Path | None) -> Path | None:
    path = state if state is not None else settings(ctx).risk.state_path
    return None if path is None else Path(path).expanduser()


def _payload(path: Path | None, state: RiskState | None) -> dict[str, Any]:
    values = (state or RiskState()).to_json()
    return {"path": None if path is None else str(path), "exists": state is not None, **values}


def _show(payload: dict[str, Any], title: str) -> None:
    rows = [[k, "" if v is None else str(v)] for k, v in payload.items()]
    console.print(table(title, ["field", "value"], rows))


def risk_status_command(
    ctx: typer.Context, state: Path | None = StateOption, as_json: bool = JsonOption
) -> None:
    """Show the persisted risk state: kill switch, reason, peak equity, day counters.

    Example: aitrader risk status --state data/risk.json
    """
    path = _path(ctx, state)
    payload = _payload(path, None if path is None else JsonRiskStateStore(path).load())
    if as_json:
        emit_json(payload | ({"message": NOT_PERSISTED} if path is None else {}))
        return
    if path is None:
        console.print(NOT_PERSISTED, highlight=False, soft_wrap=True)
    _show(payload, "Risk state" + ("" if payload["exists"] else " (no file yet: defaults)"))


def risk_reset_command(
    ctx: typer.Context, state: Path | None = StateOption, as_json: bool = JsonOption
) -> None:
    """Clear the kill switch (the only way it clears); other counters are kept.

    Example: aitrader risk reset --state data/risk.json
    """
    path = _path(ctx, state)
    if path is None:
        raise ConfigError(f"nothing to reset: {NOT_PERSISTED}")
    store = JsonRiskStateStore(path)
    before = store.load()
    if before is None or not before.kill_switch:
        message = "kill switch was not engaged; nothing changed"
    else:
        manager = RiskManager(settings(ctx).risk, store=store)
        manager.reset_kill_switch(pd.Timestamp.now(tz="UTC"))
        message = f"kill switch reset (was: {before.kill_reason or 'no reason recorded'})"
    payload = _payload(path, store.load()) | {"message": message}
    if as_json:
        emit_json(payload)
        return
    console.print(message)
    _show(payload, "Risk state")


app.command("status")(risk_status_command)
app.command("reset")(risk_reset_command)
