"""``aitrader data download`` and ``aitrader data sync``: ccxt exchanges and Yahoo to the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import typer
from rich.progress import TaskID

from aitrader.cli.common import JsonOption, console, emit_json, progress, settings, table
from aitrader.config import DownloadConfig
from aitrader.data.download import (
    DownloadResult,
    ProgressEvent,
    ProgressFn,
    SourceOverrides,
    download,
    sync,
)
from aitrader.data.store import Store
from aitrader.errors import ConfigError

ApiUrlOption = typer.Option(
    None,
    "--api-url",
    help="Override an API base URL (testnet, proxy, mirror): KEY=URL or SOURCE:KEY=URL, e.g. "
    "public=https://testnet.binance.vision/api/v3; Yahoo's key is 'base'. Repeatable.",
)
MarketTypeOption = typer.Option(
    None, "--market-type", help="Load only these ccxt market lists (spot, linear, inverse)."
)
UntilOption = typer.Option(None, "--until", help="End (exclusive), UTC; default: now.")
ConflictOption = typer.Option(
    None,
    "--on-conflict",
    help="Stored bars that differ from downloaded ones: fail, keep or replace "
    "(default: data.download.on_conflict, fail).",
)
OtherSourceOption = typer.Option(
    False, "--allow-other-source", help="Allow rows from this source into a series from another."
)


def download_command(
    ctx: typer.Context,
    exchange: str = typer.Option(None, "--exchange", "-e", help="ccxt exchange id, e.g. binance."),
    source: str = typer.Option(None, "--source", help="Data source: yahoo or a ccxt exchange."),
    symbols: list[str] = typer.Option(  # noqa: B008
        ..., "--symbol", "-s", help="Symbol (BTC/USDT, SPY); repeatable."
    ),
    timeframe: str = typer.Option("1h", "--timeframe", "-t", help="Bar length: 1m, 1h, 1d ..."),
    since: str = typer.Option(None, "--since", help="Start, UTC (2021-01-01 or ISO time)."),
    until: str = UntilOption,
    api_urls: list[str] = ApiUrlOption,
    market_types: list[str] = MarketTypeOption,
    on_conflict: str = ConflictOption,
    allow_other_source: bool = OtherSourceOption,
    as_json: bool = JsonOption,
) -> None:
    """Download candles into the store; re-runs fetch only what is missing.

    Pages are stored as they arrive, so an interrupted download resumes where it stopped; the
    still-open candle is never stored. Yahoo: --source yahoo, timeframes 1h, 1d, 1w.

    Example: aitrader data download -e kraken -s BTC/USD -t 1h --since 2021-01-01
    """
    name = _source_name(exchange, source)
    cfg = settings(ctx)
    overrides = _overrides(api_urls or [], market_types or [], default_source=name)
    config = _write_rules(cfg.data.download, on_conflict, allow_other_source)
    with _progress_callback(as_json) as callback:
        results = download(
            Store(cfg.data.dir),
            name,
            symbols,
            timeframe,
            (parse_time(since, "--since"), parse_time(until, "--until")),
            config,
            progress=callback,
            overrides=overrides,
        )
    _print(results, as_json, "Downloaded")


def sync_command(
    ctx: typer.Context,
    until: str = UntilOption,
    api_urls: list[str] = ApiUrlOption,
    market_types: list[str] = MarketTypeOption,
    on_conflict: str = ConflictOption,
    as_json: bool = JsonOption,
) -> None:
    """Bring every downloaded series in the store up to date (imported series are skipped).

    Exits with status 1 when any series failed; the others are still updated.

    Example: aitrader data sync --json
    """
    cfg = settings(ctx)
    overrides = _overrides(api_urls or [], market_types or [], default_source=None)
    with _progress_callback(as_json) as callback:
        results = sync(
            Store(cfg.data.dir),
            _write_rules(cfg.data.download, on_conflict, False),
            until=parse_time(until, "--until"),
            progress=callback,
            overrides=overrides,
        )
    _print(results, as_json, "Synced")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(code=1)


def _write_rules(config: DownloadConfig, on_conflict: str | None, other: bool) -> DownloadConfig:
    """The config's download section with ``--on-conflict`` / ``--allow-other-source`` applied."""
    changes: dict[str, object] = {}
    if on_conflict is not None:
        if on_conflict not in {"keep", "replace", "fail"}:
            raise ConfigError(f"--on-conflict {on_conflict!r}: use keep, replace or fail")
        changes["on_conflict"] = on_conflict
    if other:
        changes["allow_other_source"] = True
    return config.model_copy(update=changes)


def parse_time(text: str | None, option: str) -> pd.Timestamp | None:
    """A UTC timestamp from ``2021-01-01``, an ISO time (naive means UTC) or ``now``."""
    if text is None:
        return None
    try:
        value = pd.Timestamp.now(tz="UTC") if text.strip() == "now" else pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{option} {text!r}: not a date/time (use 2021-01-01 or 2021-01-01T12:00)"
        ) from exc
    if value is pd.NaT:
        raise ConfigError(f"{option} {text!r}: not a date/time")
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def _source_name(exchange: str | None, source: str | None) -> str:
    if exchange and source and exchange.lower() != source.lower():
        raise ConfigError(f"--exchange {exchange!r} and --source {source!r} disagree; give one")
    name = exchange or source
    if not name:
        raise ConfigError("give --exchange (e.g. binance) or --source yahoo")
    return name.lower()


def _overrides(
    api_urls: Sequence[str], market_types: Sequence[str], default_source: str | None
) -> SourceOverrides:
    """Parse ``--api-url`` values into per-source URL maps."""
    urls: dict[str, dict[str, str]] = {}
    for item in api_urls:
        left, sep, url = item.partition("=")
        source, colon, key = left.rpartition(":")
        source = source if colon else (default_source or "")
        if not sep or not url or not key or not source:
            raise ConfigError(
                f"--api-url {item!r}: expected KEY=URL"
                + ("" if default_source else " with a source prefix, SOURCE:KEY=URL")
            )
        urls.setdefault(source.lower(), {})[key] = url
    return SourceOverrides(urls=urls, market_types=tuple(market_types))


@contextmanager
def _progress_callback(quiet: bool) -> Iterator[ProgressFn | None]:
    """A rich progress bar (stderr) with one task per series, or nothing for ``--json``."""
    if quiet:
        yield None
        return
    with progress() as bar:
        tasks: dict[str, TaskID] = {}

        def update(event: ProgressEvent) -> None:
            name = str(event.key)
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=max(event.total, 1))
            bar.update(tasks[name], completed=event.done, total=max(event.total, 1))

        yield update


def _print(results: list[DownloadResult], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    columns = ["dataset", "status", "rows_added", "rows", "first", "last", "message"]
    rows = ([getattr(r, c) for c in columns] for r in results)
    console.print(table(title, columns, rows))
