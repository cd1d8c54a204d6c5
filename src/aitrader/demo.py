"""The main job on bundled real data, offline. It grows with the project; today it runs the data
pipeline (samples, quality checks, store, resampling, SQL), then builds the default feature set and
the cost-aware labels the models will learn.
"""

from __future__ import annotations

import time

from rich.console import Console

from aitrader.cli.common import table
from aitrader.config import Settings
from aitrader.data.datasets import load_dataset
from aitrader.data.quality import apply_policies, run_qc
from aitrader.data.resample import resample
from aitrader.data.samples import PREFIX, SAMPLES, load_sample
from aitrader.data.store import DatasetKey, Store
from aitrader.features.featureset import build_features
from aitrader.labels import direction_labels

SUMMARY_SQL = """
SELECT exchange || ':' || symbol || ':' || timeframe AS dataset,
       count(*) AS bars,
       strftime(min(timestamp), '%Y-%m-%d') AS first,
       strftime(max(timestamp), '%Y-%m-%d') AS last,
       round(last(close ORDER BY timestamp) / first(open ORDER BY timestamp) - 1, 3) AS total_return
FROM candles GROUP BY ALL ORDER BY dataset
"""

YEARLY_SQL = """
SELECT year(timestamp) AS year,
       round(last(close ORDER BY timestamp) / first(open ORDER BY timestamp) - 1, 3) AS return,
       round(stddev(ln(close / open)) * sqrt(365), 3) AS open_close_vol_ann,
       round(min(low), 2) AS low, round(max(high), 2) AS high
FROM candles WHERE symbol = 'BTC/USD' AND timeframe = '1d'
GROUP BY ALL ORDER BY year
"""


def run_demo(settings: Settings, console: Console | None = None) -> None:
    """Run the offline demo and print what each step found."""
    out = console or Console()
    started = time.perf_counter()
    store = Store(settings.data.dir)
    out.rule("[bold]aitrader demo[/] — data pipeline on bundled real data (offline)")
    rows = []
    for name, sample in SAMPLES.items():
        df = load_sample(name)
        rows.append(
            [
                PREFIX + name,
                sample.symbol,
                sample.timeframe,
                df.index[0].date(),
                df.index[-1].date(),
                len(df),
            ]
        )
    out.print(table("1. Bundled samples", ["name", "symbol", "tf", "first", "last", "rows"], rows))

    out.print("\n[bold]2. Quality checks[/] (policies from the `qc` config section)")
    for name in ("BTC-USD-1h", "ETH-USD-1h", "BTC-PERP-1m"):
        dataset = load_dataset(PREFIX + name, store)
        report = run_qc(dataset.candles, dataset.timeframe, settings.qc, dataset.name)
        clean = apply_policies(dataset.candles, report)
        longest = report.longest_gap
        warn = ", ".join(f"{c.name}={c.count}" for c in report.checks if c.count) or "none"
        out.print(
            f"  {dataset.name}: {'passed' if report.passed else 'REJECTED'}; "
            f"{len(report.gaps)} gaps / {report.missing_bars} missing bars"
            + (
                f" (longest {longest.missing} from {longest.start:%Y-%m-%d %H:%M})"
                if longest
                else ""
            )
            + f"; findings: {warn}"
        )
        key = DatasetKey(dataset.exchange, dataset.symbol, dataset.timeframe)
        store.write(key, clean, source=dataset.name)

    out.print(f"\n[bold]3. Resampling[/] into the store at {store.root}/")
    for key_text, target in (
        ("kraken:BTC/USD:1h", "4h"),
        ("kraken:BTC/USD:1h", "1d"),
        ("ftx:BTC-PERP:1m", "1h"),
    ):
        key = DatasetKey.parse(key_text)
        bars = store.read(key)
        coarse = resample(bars, key.timeframe, target)
        store.write(DatasetKey(key.exchange, key.symbol, target), coarse, source=f"resample:{key}")
        out.print(f"  {key} → {target}: {len(bars)} bars → {len(coarse)} bars")

    summary = store.query(SUMMARY_SQL)
    out.print(
        table(
            "\n4. Store summary (DuckDB over Parquet)",
            summary.columns,
            summary.itertuples(index=False),
        )
    )
    yearly = store.query(YEARLY_SQL)
    out.print(
        table(
            "5. BTC/USD by year, from resampled daily bars",
            yearly.columns,
            yearly.itertuples(index=False),
        )
    )
    _features_and_labels(settings, store, out)
    out.print(f"\ndone in {time.perf_counter() - started:.1f}s. Try: aitrader data --help")


def _features_and_labels(settings: Settings, store: Store, out: Console) -> None:
    """Build the configured feature set and the direction labels on BTC/USD hourly."""
    candles = store.read(DatasetKey.parse("kraken:BTC/USD:1h"))
    matrix = build_features(candles, settings.features, timeframe="1h")
    out.print(
        f"\n[bold]6. Features[/] on kraken:BTC/USD:1h: {len(matrix.frame.columns)} columns × "
        f"{len(matrix.frame)} rows, {matrix.dropped_warmup} warm-up rows dropped (not filled), "
        f"spec hash {matrix.spec_hash[:12]}"
    )
    labels = direction_labels(candles, horizon=1, costs=settings.costs)
    counts = labels.values.dropna().value_counts(normalize=True).sort_index()
    shares = ", ".join(f"{name} {counts.get(value, 0.0):.1%}" for value, name in _CLASSES)
    out.print(
        f"[bold]7. Labels[/]: next-bar direction with a neutral band of "
        f"±{settings.costs.round_trip:.2%} (the round-trip cost): {shares}"
    )


_CLASSES = ((-1.0, "down"), (0.0, "neutral"), (1.0, "up"))
