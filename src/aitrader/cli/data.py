"""``aitrader data ...``: bundled samples, import, download, store, quality checks, resampling."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table
from aitrader.cli.lazy import lazy_group
from aitrader.data.provenance import OnConflict, Write

if TYPE_CHECKING:  # the data layer is imported by the command that runs (quick start-up)
    from aitrader.data.quality import QCReport
    from aitrader.data.store import Store

app = typer.Typer(
    cls=lazy_group(  # network clients: imported only when these commands run
        {
            "download": "aitrader.cli.data_download:download_command",
            "sync": "aitrader.cli.data_download:sync_command",
            "list": "aitrader.cli.data_store:list_command",
            "history": "aitrader.cli.data_store:history_command",
            "delete": "aitrader.cli.data_store:delete_command",
        }
    ),
    help="Market data: samples, import, download, sync, list, history, delete, qc, resample, "
    "query.",
    no_args_is_help=True,
)

ColumnOption = typer.Option(
    [], "--column", help="Map a field to a file column, e.g. --column timestamp=Date (repeatable)."
)
UnitOption = typer.Option(
    "auto",
    "--timestamp-unit",
    help="auto (told apart by size), s, ms, us, ns or iso; a given unit is checked against the "
    "dates it gives.",
)


class Calendar(StrEnum):
    AUTO = "auto"
    CRYPTO = "crypto"
    EQUITY = "equity"


CalendarOption = typer.Option(
    Calendar.AUTO,
    "--calendar",
    help="crypto (365 days a year) or equity (252 sessions); auto: inferred from weekend bars. "
    "Stored with the series and used to annualise its metrics.",
)
TimezoneOption = typer.Option(
    "UTC", "--timezone", help="Zone of naive timestamps, e.g. US/Eastern."
)


def _store(ctx: typer.Context) -> Store:
    from aitrader.data.store import Store

    return Store(settings(ctx).data.dir)


@app.command("samples")
def samples_command(as_json: bool = JsonOption) -> None:
    """List the bundled real data sets with their ranges and rows.

    Example: aitrader data samples --json
    """
    from aitrader.data.samples import PREFIX, SAMPLES, load_sample

    rows = []
    for name, sample in SAMPLES.items():
        df = load_sample(name)
        rows.append(
            {
                "name": PREFIX + name,
                "venue": sample.venue,
                "symbol": sample.symbol,
                "timeframe": sample.timeframe,
                "first": df.index[0].isoformat(),
                "last": df.index[-1].isoformat(),
                "rows": len(df),
                "source": sample.source,
                "licence": sample.licence,
            }
        )
    if as_json:
        emit_json(rows)
        return
    columns = ["name", "venue", "tf", "first", "last", "rows", "licence"]
    cells = (
        [r["name"], r["venue"], r["timeframe"], *_dates(r), f"{r['rows']:,}", r["licence"]]
        for r in rows
    )
    console.print(table("Bundled samples", columns, cells))


OnConflictOption = typer.Option(
    OnConflict.FAIL,
    "--on-conflict",
    help="Stored bars that differ from the new ones: fail (default, nothing is written), keep "
    "(stored rows win) or replace (new rows win).",
)
OtherSourceOption = typer.Option(
    False, "--allow-other-source", help="Allow rows from another source into this series."
)


def _dates(row: dict[str, object]) -> list[str]:
    return [str(row["first"])[:10], str(row["last"])[:10]]


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV (.csv, .csv.gz, .tsv) or Parquet file."),  # noqa: B008
    symbol: str = typer.Option(..., "--symbol", "-s", help="Symbol, e.g. BTC/USDT or SPY."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Bar length, e.g. 1m, 1h, 1d."),
    exchange: str = typer.Option("file", "--exchange", "-e", help="Store under this exchange."),
    column: list[str] = ColumnOption,
    timestamp_unit: str = UnitOption,
    timezone: str = TimezoneOption,
    calendar: Calendar = CalendarOption,
    on_conflict: OnConflict = OnConflictOption,
    allow_other_source: bool = OtherSourceOption,
    as_json: bool = JsonOption,
) -> None:
    """Quality-check a candle file (as `data qc` does) and merge it into the store.

    The store is untouched on any error. Bars already stored with other values stop the import
    unless --on-conflict says which win; rows from another source need --allow-other-source.

    Examples:
    $ aitrader data import prices.csv --symbol BTC/USDT --timeframe 1h
    $ aitrader data import quotes.csv -s SPY -t 1d --column timestamp=Date
    """
    from aitrader.data.files import FileFormat, ImportRules, import_file, parse_mapping
    from aitrader.data.store import DatasetKey

    key = DatasetKey(exchange.lower(), symbol, timeframe)
    fmt = FileFormat(parse_mapping(column), timestamp_unit, timezone)
    rules = ImportRules(settings(ctx).qc, on_conflict, allow_other_source, calendar.value)
    done = import_file(_store(ctx), file, key, fmt, rules)
    meta = done.meta
    result = {
        "dataset": str(key),
        "added": done.added,
        "conflicts": done.conflicts,
        "on_conflict": on_conflict.value,
        "rows": meta.rows,
        "first": meta.first,
        "last": meta.last,
        "calendar": meta.calendar,
    }
    if as_json:
        emit_json(result)
        return
    kept = "kept the stored values" if on_conflict is OnConflict.KEEP else "replaced"
    differing = f", {done.conflicts} differing bars {kept}" if done.conflicts else ""
    console.print(
        f"imported {file} → {key}: {done.added} new rows{differing}, {meta.rows} in store "
        f"({meta.calendar} calendar)"
    )


@app.command("qc")
def qc_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="sample:NAME, EXCHANGE:SYMBOL:TF or a file path."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="For files (default: inferred)."),
    gaps: int = typer.Option(10, "--gaps", help="How many gaps to list in the table output."),
    as_json: bool = JsonOption,
) -> None:
    """Quality-check a data set: gaps, duplicates, ordering, OHLC, prices, volume, outliers.

    Exits 1 when a check whose policy is `reject` finds rows (policies: `qc:` in the config).

    Example: aitrader data qc sample:BTC-USD-1h --json
    """
    from aitrader.data.datasets import load_dataset
    from aitrader.data.quality import run_qc
    from aitrader.data.store import Store

    cfg = settings(ctx)
    dataset = load_dataset(name, Store(cfg.data.dir), timeframe, raw=True)
    report = run_qc(dataset.candles, dataset.timeframe, cfg.qc, dataset.name, dataset.calendar)
    if as_json:
        emit_json(report.as_dict())
    else:
        print_qc(report, gaps)
    if not report.passed:
        raise typer.Exit(1)


def print_qc(report: QCReport, max_gaps: int = 10) -> None:
    """Render a QC report as tables."""
    console.print(
        f"[bold]{report.dataset}[/] {report.timeframe}: {report.rows} rows, "
        f"{report.first} → {report.last}"
    )
    rows = (
        [c.name, c.policy.value, c.count, ("REJECT" if c.rejected else "warn" if c.count else "ok")]
        for c in report.checks
    )
    console.print(table("Checks", ["check", "policy", "count", "status"], rows))
    if report.gaps:
        longest = report.longest_gap
        console.print(
            f"gaps: {len(report.gaps)}, missing bars: {report.missing_bars}, longest: "
            f"{longest.missing if longest else 0} bars from {longest.start if longest else '-'}"
        )
        shown = sorted(report.gaps, key=lambda g: -g.missing)[:max_gaps]
        gap_rows = ([g.start, g.end, g.missing] for g in shown)
        console.print(
            table(f"Largest {len(shown)} gaps", ["first missing", "last missing", "bars"], gap_rows)
        )
    console.print("[green]passed[/]" if report.passed else "[red]rejected[/]")


@app.command("resample")
def resample_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="sample:NAME, EXCHANGE:SYMBOL:TF or a file path."),
    to: str = typer.Option(..., "--to", help="Target timeframe, a multiple of the source."),
    save: bool = typer.Option(False, "--save", help="Write the result to the store."),
    drop_partial: bool = typer.Option(
        False, "--drop-partial", help="Also drop bins with missing bars."
    ),
    on_conflict: OnConflict = OnConflictOption,
    as_json: bool = JsonOption,
) -> None:
    """Aggregate to a coarser timeframe (bar-open labels; partial edge bars and gaps excluded).

    Example: aitrader data resample sample:BTC-PERP-1m --to 1h --save
    """
    from aitrader.data.datasets import load_dataset
    from aitrader.data.quality import apply_policies, run_qc
    from aitrader.data.resample import resample
    from aitrader.data.store import DatasetKey, Store

    cfg = settings(ctx)
    store = Store(cfg.data.dir)
    dataset = load_dataset(name, store)
    report = run_qc(dataset.candles, dataset.timeframe, cfg.qc, dataset.name, dataset.calendar)
    candles = apply_policies(dataset.candles, report)
    out = resample(candles, dataset.timeframe, to, drop_partial=drop_partial)
    result: dict[str, object] = {
        "dataset": dataset.name,
        "from": dataset.timeframe,
        "to": to,
        "rows_in": len(candles),
        "rows_out": len(out),
        "first": out.index[0].isoformat() if len(out) else None,
        "last": out.index[-1].isoformat() if len(out) else None,
    }
    if save:
        key = DatasetKey(dataset.exchange, dataset.symbol, to)
        how = Write(f"resample:{dataset.name}", "resample", on_conflict, calendar=dataset.calendar)
        store.write(key, out, how)
        result["saved"] = str(key)
    if as_json:
        emit_json(result)
        return
    console.print(
        f"{dataset.name}: {len(candles)} × {dataset.timeframe} → {len(out)} × {to} "
        f"({result['first']} → {result['last']})"
        + (f", saved as {result['saved']}" if save else "")
    )


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: str = typer.Argument(
        ..., help="DuckDB SQL; the view `candles` holds every stored series."
    ),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Allow any SQL: other files, writes, extensions (a console)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run SQL over the store with DuckDB, read-only: SELECT / EXPLAIN over the stored series
    only (no other file, no writes) unless --unsafe.

    Example: aitrader data query "SELECT symbol, count(*) FROM candles GROUP BY 1"
    """
    result = _store(ctx).query(sql, unsafe=unsafe)
    if as_json:
        emit_json(result.to_dict(orient="records"))
        return
    console.print(table("Query", [str(c) for c in result.columns], result.itertuples(index=False)))
