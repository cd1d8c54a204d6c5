"""``aitrader control status | pause | resume | kill | flatten``: watch and steer a paper or
live run through its ledger, also while the run is going (the runner reads the flags every bar)."""

from __future__ import annotations

from pathlib import Path

import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table
from aitrader.errors import ConfigError
from aitrader.live.ledger import Ledger
from aitrader.live.records import secret_values
from aitrader.ops.controls import apply_control, status_payload

app = typer.Typer(
    help="Watch and steer a running paper/live run through its ledger.", no_args_is_help=True
)

LedgerArgument = typer.Option(..., "--ledger", help="The run's SQLite ledger file.")
ReasonOption = typer.Option("set from the command line", "--reason", help="Why (logged).")


def _open(ctx: typer.Context, path: Path) -> Ledger:
    if not path.is_file():
        raise ConfigError(f"--ledger {path}: no such ledger file")
    return Ledger(path, secret_values(settings(ctx).secrets))


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


def _set(ctx: typer.Context, path: Path, action: str, reason: str, as_json: bool) -> None:
    with _open(ctx, path) as book:
        flag, said = apply_control(book, action, reason)
    if as_json:
        emit_json(
            {
                "ledger": str(path),
                "flag": flag.name,
                "on": flag.on,
                "reason": reason,
                "message": said,
            }
        )
    else:
        console.print(said, highlight=False, soft_wrap=True)


def _control_command(action: str, help_text: str) -> None:
    """``aitrader control ACTION``: sets the flag of ``action`` (see ``CONTROLS``)."""

    def command(
        ctx: typer.Context,
        ledger: Path = LedgerArgument,
        reason: str = ReasonOption,
        as_json: bool = JsonOption,
    ) -> None:
        _set(ctx, ledger, action, reason, as_json)

    command.__doc__ = help_text
    app.command(action)(command)


_control_command(
    "pause",
    """Pause trading: the run keeps recording bars and equity but sends no new order.

    Example: aitrader control pause --ledger live.db --reason "maintenance"
    """,
)
_control_command(
    "resume",
    """Resume trading after a pause (also one the circuit breaker set) or a flatten.

    Example: aitrader control resume --ledger live.db
    """,
)
_control_command(
    "kill",
    """Engage the kill switch: flatten every position and block new entries.

    Example: aitrader control kill --ledger live.db --reason "manual stop"
    """,
)
_control_command(
    "flatten",
    """Close every position once (risk-checked, reduce-only), then stay flat until resume.

    Example: aitrader control flatten --ledger live.db --reason "news in an hour"
    """,
)
