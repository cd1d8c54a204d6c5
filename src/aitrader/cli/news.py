"""``aitrader news fetch``: headlines from the configured feeds, scored, into the store that the
``news_sentiment`` feature reads."""

from __future__ import annotations

import typer

from aitrader.cli.common import JsonOption, console, emit_json, settings, table

app = typer.Typer(help="News sentiment: fetch and score headlines.", no_args_is_help=True)


@app.command("fetch")
def fetch_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Fetch every feed in ``sentiment.feeds`` (RSS, Atom or CryptoPanic-style JSON), score
    the headlines (VADER, or FinBERT from sentiment.finbert_dir) and add the new ones to the
    store (sentiment.store, default DATA_DIR/news.jsonl). Use the store in a feature spec:
    ``{name: news_sentiment, params: {store: PATH, lag_minutes: 5}}``.

    Example: aitrader news fetch --json
    """
    from aitrader.sentiment.collect import collect, store_path

    cfg = settings(ctx)
    store = store_path(cfg.sentiment, cfg.data.dir)
    reports = collect(cfg.sentiment, store)
    rows = [vars(r) for r in reports]
    if as_json:
        emit_json({"store": str(store), "feeds": rows})
        return
    columns = ["feed", "headlines", "added", "skipped", "error"]
    body = ([str(r[c] if r[c] is not None else "-") for c in columns] for r in rows)
    console.print(table(f"News → {store}", columns, body))
