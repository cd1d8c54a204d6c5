"""``aitrader features ...``: list the feature registry, build feature matrices into the store."""

from __future__ import annotations

import typer

from aitrader.cli.common import JsonOption, console, emit_json, progress, settings, table
from aitrader.data.datasets import load_dataset
from aitrader.data.store import Store

app = typer.Typer(
    help="Features: list the registry, build leak-free feature matrices.", no_args_is_help=True
)


@app.command("list")
def list_command(as_json: bool = JsonOption) -> None:
    """Show every available feature with its group, parameters (defaults) and warm-up.

    Example: aitrader features list --json
    """
    from aitrader.features.registry import features

    rows = [f.describe() for f in features()]
    if as_json:
        emit_json(rows)
        return
    columns = ["name", "group", "params", "warm-up", "columns", "summary"]
    console.print(
        table(
            "Features",
            columns,
            (
                [
                    r["name"],
                    r["group"],
                    ", ".join(f"{k}={v}" for k, v in r["params"].items()),
                    f"{r['warmup']}" + ("" if r["exact_warmup"] else "+"),
                    len(r["columns"]),
                    r["summary"],
                ]
                for r in rows
            ),
        )
    )


@app.command("build")
def build_command(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="sample:NAME or EXCHANGE:SYMBOL:TIMEFRAME"),
    as_json: bool = JsonOption,
) -> None:
    """Compute the configured feature set (``features:`` in the config) on a data set and write
    the matrix to ``<data dir>/features/<dataset>/<spec hash>.parquet``.

    Example: aitrader features build sample:BTC-USD-1h
    """
    from aitrader.features.featureset import build_features
    from aitrader.features.storage import matrix_path, write_matrix

    cfg = settings(ctx)
    spec = cfg.features
    loaded = load_dataset(dataset, Store(cfg.data.dir))
    candles, timeframe = loaded.candles, loaded.timeframe
    with progress(transient=True) as bar:
        task = bar.add_task(f"features {dataset}", total=len(spec.specs()))
        matrix = build_features(
            candles,
            spec,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            timeframe=timeframe,
        )
    path = write_matrix(
        matrix, matrix_path(cfg.data.dir, dataset, matrix.spec_hash), dataset, list(spec.specs())
    )
    summary = {
        "dataset": dataset,
        "rows": len(matrix.frame),
        "columns": len(matrix.columns),
        "dropped_warmup": matrix.dropped_warmup,
        "rows_with_nan": matrix.nan_rows,
        "spec_hash": matrix.spec_hash,
        "path": str(path),
    }
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"{dataset}: {summary['rows']} rows x {summary['columns']} columns "
        f"(dropped {matrix.dropped_warmup} warm-up rows) -> {path}",
        highlight=False,
    )
