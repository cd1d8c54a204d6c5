"""``aitrader control status | pause | resume | kill``: watch and steer a paper or live run
through its ledger, also while the run is going (the runner reads the flags every bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table
from aitrader.errors import ConfigError
from aitrader.live.ledger import KILL, PAUSE, Ledger
from aitrader.live.records import secret_values
from aitrader.live.runner import PROGRESS

app = typer.Typer(
    help="Watch and steer a running paper/live run through its ledger.", no_args_is_help=True
)

LedgerArgument = typer.Option(..., "--ledger", help="The run's SQLite ledger file.")
ReasonOption = typer.Option("set from the command line", "--reason", help="Why (logged).")


def _open(ctx: typer.Context, path: Path) -> Ledger:
    if not path.is_file():
        raise ConfigError(f"--ledger {path}: no such ledger file")
    return Ledger(path, secret_values(settings(ctx).secrets))


def status_payload(ledger: Ledger, events: int = 10) -> dict[str, Any]:
    """What a monitor shows: flags, runtime status, progress, equity, positions, open orders."""
    progress = ledger.load_state(PROGRESS) or {}
    curve = ledger.equity_curve()
    flags = {name: ledger.get_flag(name) for name in (PAUSE, KILL)}
    status = ledger.load_state("status") or {}
    return {
        "status": status.get("status", "unknown"),
        "reconciling": status.get("reconciling") or "",  # paused until the venue squares
        "paused": flags[PAUSE].on,
        "pause_reason": flags[PAUSE].reason if flags[PAUSE].on else "",
        "kill": flags[KILL].on,
        "bars": progress.get("bars", 0),
        "last_bar": progress.get("last_bar"),
        "equity": float(curve["equity"].iloc[-1]) if len(curve) else None,
        "positions": {s: p.qty for s, p in ledger.positions().items() if p.qty},
        "open_orders": [o.client_order_id for o in ledger.open_orders()],
        "events": [
            f"{e.time} {e.level} {e.kind}: {e.message}" for e in ledger.events(limit=events)
        ],
    }


@app.command("status")
def status_command(
    ctx: typer.Context,
    ledger: Path = LedgerArgument,
    events: int = typer.Option(10, "--events", help="How many recent events to show."),
    as_json: bool = JsonOption,
) -> None:
    """Show a run's state: paused/kill flags, status, last bar, equity, positions, events.

    Example: aitrader control status --ledger live.db
    """
    with _open(ctx, ledger) as book:
        payload = status_payload(book, events)
    if as_json:
        emit_json(payload)
        return
    rows = [[k, f"{v:,.2f}" if isinstance(v, float) else str(v)] for k, v in payload.items()]
    rows = [r for r in rows if r[0] != "events"]
    console.print(table(f"Run {ledger}", ["", "value"], rows))
    for line in payload["events"]:
        console.print(line, highlight=False, soft_wrap=True)


def _set(ctx: typer.Context, path: Path, name: str, on: bool, reason: str, said: str) -> None:
    with _open(ctx, path) as book:
        book.set_flag(name, on, reason)
    console.print(said, highlight=False, soft_wrap=True)


@app.command("pause")
def pause_command(
    ctx: typer.Context, ledger: Path = LedgerArgument, reason: str = ReasonOption
) -> None:
    """Pause trading: the run keeps recording bars and equity but sends no new order.

    Example: aitrader control pause --ledger live.db --reason "exchange maintenance"
    """
    _set(ctx, ledger, PAUSE, True, reason, "paused: no new orders from the next bar on")


@app.command("resume")
def resume_command(
    ctx: typer.Context, ledger: Path = LedgerArgument, reason: str = ReasonOption
) -> None:
    """Resume trading after a pause (also one the circuit breaker set).

    Example: aitrader control resume --ledger live.db
    """
    _set(ctx, ledger, PAUSE, False, reason, "resumed: the next bar decides again")


@app.command("kill")
def kill_command(
    ctx: typer.Context, ledger: Path = LedgerArgument, reason: str = ReasonOption
) -> None:
    """Engage the kill switch: flatten every position and block new entries.

    Example: aitrader control kill --ledger live.db --reason "manual stop"
    """
    _set(ctx, ledger, KILL, True, reason, "kill switch requested: positions close at the next bar")
