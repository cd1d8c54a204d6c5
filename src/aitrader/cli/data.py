"""``aitrader data ...``: bundled samples, import, download, store, quality checks, resampling."""

from __future__ import annotations

import typer

from aitrader.cli.common import JsonOption, console, emit_json, table
from aitrader.data.samples import PREFIX, SAMPLES, load_sample

app = typer.Typer(
    help="Market data: samples, import, download, sync, qc, resample, query.", no_args_is_help=True
)


@app.command("samples")
def samples_command(as_json: bool = JsonOption) -> None:
    """List the bundled real data sets with their ranges and rows.

    Example: aitrader data samples --json
    """
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
    columns = ["name", "venue", "timeframe", "first", "last", "rows", "licence"]
    console.print(table("Bundled samples", columns, ([r[c] for c in columns] for r in rows)))
