"""The main job, offline on bundled real data: data → features → walk-forward LightGBM with
calibration → mode choice → signals with EV gating → risk manager → backtest with costs →
comparison with buy-and-hold and an SMA crossover → HTML report and a summary in the terminal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import TaskID

from aitrader.analytics.metrics import compute_metrics
from aitrader.analytics.report import write_report
from aitrader.cli.common import progress, table
from aitrader.config import Settings
from aitrader.data.datasets import load_dataset
from aitrader.data.provenance import OnConflict, Write
from aitrader.data.quality import apply_policies, run_qc
from aitrader.data.resample import resample
from aitrader.data.samples import PREFIX
from aitrader.data.store import DatasetKey, Store
from aitrader.features.featureset import build_features
from aitrader.validation.evaluation import LOW_TIME_IN_MARKET
from aitrader.validation.research import (
    PipelineOptions,
    PipelineResult,
    SymbolRun,
    portfolio_backtest,
    research,
)

SYMBOLS = ("BTC-USD-1h", "ETH-USD-1h")


def run_demo(settings: Settings, quick: bool = False, console: Console | None = None) -> Path:
    """Run the whole pipeline and print what each step found; returns the report path."""
    out = console or Console()
    started = time.perf_counter()
    settings = long_flat(settings)
    store = Store(settings.data.dir)
    options = PipelineOptions(quick=quick)
    kind = "quick run: last ~19 months, smaller model" if quick else "full history"
    out.rule(f"[bold]aitrader demo[/] — bundled Kraken BTC/USD and ETH/USD hourly ({kind})")
    candles = _data_steps(settings, store, out)
    runs = _research(candles, settings, options, out)
    result = portfolio_backtest(runs, settings, options)
    report = write_report(result.backtest.result, Path(settings.data.dir) / "reports" / "demo")
    result.backtest.decisions.to_csv(report.parent / "risk_decisions.csv", index=False)
    _print_outcome(result, out)
    out.print(
        f"\nreport: [bold]{report}[/] (risk decisions with their reasons in "
        f"risk_decisions.csv; done in {time.perf_counter() - started:.0f}s)"
    )
    return report


def long_flat(settings: Settings) -> Settings:
    """The samples are spot markets, which live trading trades long/flat: no short signals."""
    signals = settings.signals.model_copy(update={"allow_short": False})
    return settings.model_copy(update={"signals": signals})


def _data_steps(settings: Settings, store: Store, out: Console) -> dict[str, Any]:
    """Quality-check the samples, store them, resample, and build the feature set once."""
    out.print("[bold]1. Data[/]: quality checks (policies from the `qc` config section)")
    candles: dict[str, Any] = {}
    for name in SYMBOLS:
        dataset = load_dataset(PREFIX + name, store)
        report = run_qc(
            dataset.candles, dataset.timeframe, settings.qc, dataset.name, dataset.calendar
        )
        clean = apply_policies(dataset.candles, report)
        longest = report.longest_gap
        out.print(
            f"  {dataset.name}: {len(clean)} bars {clean.index[0]:%Y-%m-%d} → "
            f"{clean.index[-1]:%Y-%m-%d}, {'passed' if report.passed else 'REJECTED'}; "
            f"{len(report.gaps)} gaps / {report.missing_bars} missing bars reported, not filled"
            + (f" (longest {longest.missing} h from {longest.start:%Y-%m-%d})" if longest else "")
        )
        key = DatasetKey(dataset.exchange, dataset.symbol, dataset.timeframe)
        store.write(key, clean, Write(dataset.name, "demo", OnConflict.REPLACE))
        daily = resample(clean, "1h", "1d")
        how = Write(f"resample:{key}", "demo", OnConflict.REPLACE)
        store.write(DatasetKey(key.exchange, key.symbol, "1d"), daily, how)
        candles[dataset.symbol] = clean
    matrix = build_features(candles["BTC/USD"], settings.features, timeframe="1h")
    out.print(
        f"[bold]2. Features[/]: {len(matrix.frame.columns)} columns "
        f"(spec {matrix.spec_hash[:12]}), "
        f"{matrix.dropped_warmup} warm-up rows dropped, never filled; labels: next-bar direction "
        f"with a ±{settings.costs.round_trip:.2%} neutral band (the round-trip cost)"
    )
    return candles


def _research(
    candles: dict[str, Any], settings: Settings, options: PipelineOptions, out: Console
) -> list[SymbolRun]:
    runs = []
    with progress() as bar:
        for symbol, frame in candles.items():
            task = bar.add_task(f"walk-forward {symbol}", total=None)

            def advance(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            runs.append(research(symbol, frame, settings, options, advance))
    out.print(
        "[bold]3. Walk-forward LightGBM[/] (purged, embargoed, calibrated after each "
        "training window; numbers are out of sample)"
    )
    out.print(
        table(
            "",
            [
                "symbol",
                "folds",
                "OOS from",
                "accuracy",
                "majority",
                "log loss",
                "Brier skill",
                "ECE",
            ],
            (_model_row(r) for r in runs),
        )
    )
    _print_decisions(runs, out)
    return runs


def _print_decisions(runs: list[SymbolRun], out: Console) -> None:
    """Steps 4 and 5 of the demo: each symbol's mode choice and its signals' reach."""
    out.print("[bold]4. Mode choice[/] (trend strength, volatility, liquidity)")
    for run in runs:
        scores = ", ".join(
            f"{s.mode} {s.score:.2f}" if s.available else f"{s.mode} n/a ({s.note})"
            for s in run.mode.scores
        )
        out.print(f"  {run.symbol}: [bold]{run.mode.mode}[/] — {scores}")
    out.print(
        "[bold]5. Signals[/] (thresholds, conviction bands, EV gate net of costs; spot, so "
        "long/flat as in live trading)"
    )
    for run in runs:
        m = run.evaluation.metrics
        out.print(
            f"  {run.symbol}: {int(run.target.notna().sum())} out-of-sample bars — in the market "
            f"{m['time_in_market']:.1%} of them; the decision traded in "
            f"{m['folds_trading']:.0f} of {m['folds']:.0f} folds (tuned on each calibration slice)"
        )
        notes = [n for n in run.evaluation.folds["decision_notes"] if n]
        if m["time_in_market"] < LOW_TIME_IN_MARKET and notes:
            out.print(f"    why: {notes[-1]}", highlight=False)


def _model_row(run: SymbolRun) -> list[str]:
    m = run.evaluation.metrics
    first = run.target.first_valid_index()
    return [
        run.symbol,
        f"{m.get('folds', 0):.0f}",
        f"{first:%Y-%m-%d}" if first is not None else "-",
        f"{m['accuracy']:.3f}",
        f"{m.get('majority_rate', float('nan')):.3f}",
        f"{m['log_loss']:.3f}",
        f"{m['brier_skill']:+.3f}",
        f"{m['ece']:.3f}",
    ]


def _print_outcome(result: PipelineResult, out: Console) -> None:
    decisions = result.backtest.decisions
    counts = decisions["action"].value_counts().to_dict() if len(decisions) else {}
    top = decisions[decisions["action"] != "accept"]["reason"].value_counts().head(3)
    out.print(
        f"[bold]6. Risk manager[/]: {sum(counts.values())} order intents"
        + (" — " if counts else " (no signal reached it)")
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + ("; most common: " + "; ".join(f"{r} ({n})" for r, n in top.items()) if len(top) else "")
    )
    metrics = compute_metrics(result.backtest.result)
    rows = [_metric_row("strategy", metrics)] + [
        _metric_row(name, values) for name, values in metrics["benchmarks"].items()
    ]
    out.print(
        table(
            f"7. Backtest, out of sample from {result.start:%Y-%m-%d}, fees and slippage on",
            ["run", "total return", "CAGR", "Sharpe", "max drawdown", "trades"],
            rows,
        )
    )
    out.print(_verdict(metrics))


def _metric_row(name: str, m: dict[str, Any]) -> list[str]:
    def pct(key: str) -> str:
        value = m.get(key)
        return "-" if value is None else f"{value:+.1%}"

    sharpe = m.get("sharpe")
    return [
        name,
        pct("total_return"),
        pct("cagr"),
        "-" if sharpe is None else f"{sharpe:.2f}",
        pct("max_drawdown").lstrip("+"),
        str(m.get("trades", "-")),
    ]


def _verdict(m: dict[str, Any]) -> str:
    """One plain sentence on how the strategy did against buy-and-hold."""
    ours = m.get("total_return") or 0.0
    hold = (m["benchmarks"].get("buy_and_hold") or {}).get("total_return") or 0.0
    if not m.get("trades") and not m.get("time_in_market"):
        return (
            "[bold]Verdict[/]: out of sample the strategy never traded: the model's edge did "
            "not pay its costs on any calibration slice, so it stayed flat (see 'why' above). "
            f"Flat is not skill, even where buy-and-hold lost ({hold:+.1%}). This demonstrates "
            "an honest pipeline; it is not a trading recommendation."
        )
    word = "beat" if ours > hold else "lost to"
    sign = "made" if ours >= 0 else "lost"
    held = m.get("time_in_market") or 0.0
    return (
        f"[bold]Verdict[/]: out of sample the strategy {sign} {abs(ours):.1%} after costs and "
        f"{word} buy-and-hold ({hold:+.1%}); it held a position {held:.0%} of the time. "
        "This demonstrates an honest pipeline; it is not a trading recommendation."
    )
