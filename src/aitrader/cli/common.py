"""Shared CLI plumbing: settings from the context, JSON/table output, progress bars."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from aitrader.config import Settings

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
TrustBundleOption = typer.Option(
    False,
    "--trust-bundle",
    help="Load a model bundle that holds a pickle (e.g. random_forest). Pickle can run any "
    "code: only for bundles you created.",
)


@dataclass
class State:
    """Per-invocation state stored on the Typer context."""

    config_path: Path | None = None
    log_level: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from aitrader.config import load_settings
            from aitrader.live.records import secret_values
            from aitrader.logsafe import install_redaction

            self._settings = load_settings(self.config_path)
            level = self.log_level or self._settings.logging.level
            logging.getLogger().setLevel(level.upper())
            install_redaction(secret_values(self._settings.secrets))
        return self._settings


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    return state(ctx).settings


def emit_json(payload: Any) -> None:
    """Write JSON to stdout (no colour, no wrapping) for scripts."""
    typer.echo(json.dumps(payload, indent=2, default=str))


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    """A rich table that never hides text: the first column (the names people type) is kept
    whole, the others wrap onto more lines in a narrow terminal instead of ending in '…'."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    names = list(columns)
    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for i, column in enumerate(names):
        if i == 0:
            widest = max((len(r[0]) for r in cells if r), default=0)
            out.add_column(column, no_wrap=True, min_width=min(max(widest, len(column)), 48))
        else:
            out.add_column(column, overflow="fold")
    for row in cells:
        out.add_row(*row)
    return out


def progress(transient: bool = False) -> Progress:
    """A rich progress bar on stderr (stdout stays clean for ``--json``)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )
