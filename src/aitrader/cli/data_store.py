"""``aitrader data list | history | delete``: what the store holds, where it came from, removal."""

from __future__ import annotations

import typer

from aitrader.cli.common import JsonOption, console, emit_json, err_console, settings, table
from aitrader.data.store import DatasetKey, DatasetMeta, Store
from aitrader.errors import AitraderError

SeriesArgument = typer.Argument(..., help="A stored series, EXCHANGE:SYMBOL:TIMEFRAME.")


def _store(ctx: typer.Context) -> Store:
    return Store(settings(ctx).data.dir)


def _day(stamp: str | None) -> str:
    """``2024-01-01 13:00`` from an ISO time (tables show minutes; JSON keeps the full time)."""
    return "" if stamp is None else stamp[:16].replace("T", " ")


def list_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the series in the local store with range, rows, source, calendar and last write.

    Example: aitrader data list --json
    """
    store = _store(ctx)
    metas = store.list()
    if as_json:
        emit_json([{"dataset": str(m.key), **_public(m)} for m in metas])
        return
    columns = ["dataset", "first", "last", "rows", "calendar", "source"]
    rows = (
        [str(m.key), _day(m.first), _day(m.last), f"{m.rows:,}", m.calendar, m.source]
        for m in metas
    )
    console.print(table(f"Store: {store.root}", columns, rows))


def history_command(
    ctx: typer.Context, series: str = SeriesArgument, as_json: bool = JsonOption
) -> None:
    """Show where a stored series came from: every write, its rows, conflicts and checksum.

    Each import, download, sync and resample that wrote the series is listed with the rows it
    added, the conflicts it met and the checksum of the series afterwards.

    Example: aitrader data history binance:BTC/USDT:1h
    """
    meta = _store(ctx).metadata(DatasetKey.parse(series))
    if as_json:
        emit_json({"dataset": str(meta.key), **_public(meta), "history": meta.history})
        return
    console.print(
        f"[bold]{meta.key}[/]: {meta.rows:,} rows, {_day(meta.first)} → {_day(meta.last)}, "
        f"source {meta.source}, {meta.calendar} calendar, checksum {meta.checksum[:16]}"
    )
    columns = ["time", "action", "source", "new", "conflicts", "rows", "checksum"]
    rows = (
        [
            _day(h.get("time")),
            h.get("action", ""),
            h.get("source", ""),
            f"{h.get('added', 0):,}",
            _conflicts(h),
            f"{h.get('rows', 0):,}",
            str(h.get("checksum", ""))[:8],
        ]
        for h in meta.history
    )
    note = "" if meta.history else " (written before histories were kept)"
    console.print(table(f"History{note}", columns, rows))


def delete_command(
    ctx: typer.Context,
    series: str = SeriesArgument,
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    as_json: bool = JsonOption,
) -> None:
    """Delete a stored series (asks first unless --yes). Its history goes with it.

    Example: aitrader data delete binance:BTC/USDT:1h --yes
    """
    store = _store(ctx)
    key = DatasetKey.parse(series)
    meta = store.metadata(key)
    if not yes:
        question = f"delete {key} ({meta.rows:,} rows from {meta.source})?"
        try:
            confirmed = typer.confirm(question, default=False, err=True)
        except typer.Abort:
            confirmed = False
        if not confirmed:
            raise AitraderError(f"{key} was not deleted (pass --yes to delete without a prompt)")
    store.delete(key)
    if as_json:
        emit_json({"deleted": str(key), "rows": meta.rows})
    else:
        err_console.print(f"deleted {key} ({meta.rows:,} rows)")


def _conflicts(entry: dict[str, object]) -> str:
    count = int(str(entry.get("conflicts", 0)))
    return f"{count:,} ({entry.get('on_conflict', '')})" if count else "0"


def _public(meta: DatasetMeta) -> dict[str, object]:
    """Metadata fields for JSON, without the (long) history."""
    return {k: v for k, v in meta.__dict__.items() if k != "history"}
