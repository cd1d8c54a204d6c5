"""``aitrader models list | promote | rollback``: the versioned model store and its champion.

Each promotion or rollback is a ``model`` event in the run's ledger (``mlops.ledger``) and a
notification on the configured channels (the ``notify`` section), like the retrain job's (the
same notifier as ``aitrader schedule run``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table
from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.models.store import ModelStore, Version

NameArgument = typer.Argument(None, help="Model name in the store (default: every model).")


def _store(cfg: Settings) -> ModelStore:
    return ModelStore(cfg.mlops.store_root(cfg.data.dir))


def _announce(cfg: Settings, text: str, payload: dict[str, Any]) -> None:
    from aitrader.cli.schedule import job_notifier
    from aitrader.models.promotion import announce

    with job_notifier(cfg) as notify:
        announce(cfg, notify, text, payload)
    console.print(text, highlight=False, soft_wrap=True)


def _row(version: Version, champion: str | None) -> dict[str, Any]:
    gate = version.meta.get("gate") or {}
    figures = version.metrics
    return {
        "name": version.name,
        "version": version.id,
        "champion": version.id == champion,
        "created": version.meta.get("created"),
        "dataset": version.meta.get("dataset"),
        "source": version.meta.get("source"),
        "promoted_by_gate": gate.get("promoted"),
        **{k: figures.get(k) for k in ("dsr", "brier", "net_sharpe")},
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def list_command(ctx: typer.Context, name: str = NameArgument, as_json: bool = JsonOption) -> None:
    """Stored model versions with their gate figures; the champion is marked.

    Example: aitrader models list btc --json
    """
    store = _store(settings(ctx))
    names = [name] if name else store.names()
    rows = []
    for model in names:
        champion = store.pointer(model).get("version")
        rows += [_row(v, champion) for v in store.versions(model)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no stored models under {store.root}")
        return
    columns = ["name", "version", "champion", "created", "dataset", "dsr", "brier", "net_sharpe"]
    console.print(
        table(
            f"Model store {store.root}",
            columns,
            (
                [_fmt(r[c]) if c != "champion" else ("*" if r[c] else "") for c in columns]
                for r in rows
            ),
        )
    )


def promote_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name in the store."),
    version: str = typer.Argument(..., help="A stored version (v0003) or a bundle directory."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the decision)."),
) -> None:
    """Make a version the champion (a bundle directory is stored as a new version first).

    Example: aitrader models promote btc v0003 --reason "after review"
    """
    cfg = settings(ctx)
    store = _store(cfg)
    if version not in {v.id for v in store.versions(name)}:
        path = Path(version).expanduser()
        if not (path / "bundle.json").is_file():
            known = ", ".join(v.id for v in store.versions(name)) or "none"
            raise ConfigError(
                f"{version}: neither a stored version of {name} (stored: {known}) nor a bundle "
                "directory"
            )
        version = store.add_directory(name, path, {}).id
    previous = store.promote(name, version)
    text = f"model {name}: {version} promoted by hand" + (f" over {previous}" if previous else "")
    text += f" ({reason})" if reason else ""
    payload = {"action": "promote", "model": name, "champion": version, "previous": previous}
    _announce(cfg, text, payload | {"champion_changed": True, "reason": reason})


def rollback_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name in the store."),
    reason: str = typer.Option("", "--reason", help="Why (recorded with the decision)."),
) -> None:
    """Make the previous champion the champion again.

    Example: aitrader models rollback btc --reason "live hit rate collapsed"
    """
    cfg = settings(ctx)
    replaced, restored = _store(cfg).rollback(name)
    text = f"model {name}: rolled back from {replaced} to {restored}"
    text += f" ({reason})" if reason else ""
    payload = {"action": "rollback", "model": name, "champion": restored, "previous": replaced}
    _announce(cfg, text, payload | {"champion_changed": True, "reason": reason})
