"""Live decision latency and paper-runtime replay throughput on real BTC-USD 1h bars.

Decision latency: the default LightGBM chain (default ``Settings()`` feature set, labels, model)
is trained on the bars *before* the replay window only. Then, for every closed bar of the replay
window, the live decision path runs one bar at a time and each stage is timed with
``time.perf_counter_ns``:

The decision runs through the model strategy (:mod:`aitrader.strategies.model`) bar by bar,
seeded with the bars before the window — whose own per-stage timings are reported:

* ``features``: the feature row of the bar: every feature except GARCH on the trailing window
  (``features_window`` bars), the GARCH column from the incremental filter kept between bars;
* ``model``: ``Predictor.predict_proba`` on that row;
* ``policy``: ``pipeline.signal_targets`` (thresholds tuned on the bundle's calibration slice,
  conviction bands, EV gate with the rolling average win / loss) and the ATR stop → target
  fraction (spot: long or flat);
* ``risk``: ``intent_for_target`` + ``RiskManager.check`` (default risk config, ATR stop);
* ``submit``: a market order through the real ccxt binance client to the local exchange
  emulator (only on bars where the risk manager approved an order of exchange-minimum size).

``total`` is the whole decision (the emulator's ``advance()`` to the next bar is not in it).

Replay throughput: ``paper_runner`` with a ``ReplayFeed`` (speed 0) over the same bars with
SMA(10/30) crossover targets from the ``sma-cross`` strategy bar by bar and a SQLite
ledger in a temporary directory (on disk, and on tmpfs ``/dev/shm`` where it exists, to separate
the fsync cost); the batch engine
(``run_managed_backtest``) on the same inputs as a reference. Also checked: the live feature rows
against the batch (training) feature matrix, and the live targets against the batch pipeline's
(``bundle_targets``); and, for attribution, the former per-bar path (the whole feature
set, GARCH included, recomputed on a trailing window) on the first ``--attribution-bars`` bars.
Prints a table and writes ``benchmarks/results/live.json``.

    python benchmarks/bench_live.py [--bars 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.engine.backtest import RunOptions
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import run_managed_backtest
from aitrader.engine.managed_policy import protective_levels
from aitrader.engine.types import Bar
from aitrader.features.featureset import build_features
from aitrader.live.build import paper_runner
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.models.registry import ModelBundle
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import Holding, PortfolioSnapshot, intent_for_target
from aitrader.risk.limits import RiskManager
from aitrader.strategies.model import ModelBundleStrategy
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy.base import Environment
from aitrader.strategy.bundle import bundle_specs, bundle_targets
from aitrader.strategy.feed import StrategyFeed, protect
from aitrader.validation.experiment import ExperimentConfig, train_bundle
from aitrader.validation.walkforward import prepare
from common import machine

SAMPLE = "BTC-USD-1h"
SYMBOL, TIMEFRAME = "BTC/USD", "1h"  # the model / signal key
MARKET, VENUE_SYMBOL = "BTC/USDT", "BTCUSDT"  # the emulator's spot market (real BTC/USD bars)
STAGES = ("features", "model", "policy", "risk", "submit", "total")
TARGET_P99_MS = 25.0


@dataclass
class Account:
    """The spot account as the order responses left it (no extra round trip per bar)."""

    quote: float
    base: float = 0.0
    cost_basis: float = 0.0  # quote spent on the base held, fees included
    orders: int = 0
    below_minimum: int = 0
    errors: list[str] = field(default_factory=list)
    final_equity: float = 0.0
    probe: list[int] = field(default_factory=list)  # submit_probe round trips (ns)

    def equity(self, price: float) -> float:
        return self.quote + self.base * price

    def apply(self, order: dict[str, Any]) -> float | None:
        """Book a filled market order; the realised P&L when it closed the position."""
        filled, cost = float(order["filled"] or 0.0), float(order["cost"] or 0.0)
        fee = sum(float(f["cost"]) for f in order.get("fees") or [])
        fee_ccy = (order.get("fees") or [{"currency": "USDT"}])[0]["currency"]
        if order["side"] == "buy":
            self.quote -= cost
            self.base += filled - (fee if fee_ccy == "BTC" else 0.0)
            self.cost_basis += cost
            return None
        share = filled / self.base if self.base > 0 else 1.0
        basis = self.cost_basis * min(share, 1.0)
        proceeds = cost - (fee if fee_ccy == "USDT" else 0.0)
        self.quote += proceeds
        self.base -= filled
        self.cost_basis -= basis
        return proceeds - basis


def train(bars: pd.DataFrame, config: ExperimentConfig) -> tuple[ModelBundle, float]:
    """The default chain on ``bars`` only (signal thresholds tuned on its calibration slice)."""
    start = time.perf_counter()
    prepared = prepare(bars, config.features, config.labels, config.costs, TIMEFRAME)
    bundle = train_bundle(prepared, config, SYMBOL, TIMEFRAME)
    return bundle, time.perf_counter() - start


def stats(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1e6
    if a.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "count": int(a.size),
        "mean_ms": round(float(a.mean()), 3),
        "p50_ms": round(float(p50), 3),
        "p90_ms": round(float(p90), 3),
        "p99_ms": round(float(p99), 3),
        "max_ms": round(float(a.max()), 3),
    }


def submit_probe(client: Any, n: int) -> list[int]:
    """Round trips of ``n`` small market orders (alternating buy / sell of 0.001 BTC) through
    ccxt to the emulator: the submit cost whether or not the model traded in the window."""
    out = []
    for k in range(n):
        side = "buy" if k % 2 == 0 else "sell"
        amount = 0.001 if side == "buy" else 0.000999  # the buy's fee is taken in BTC
        t0 = time.perf_counter_ns()
        client.create_order(MARKET, "market", side, amount)
        out.append(time.perf_counter_ns() - t0)
    return out


def as_bar(candles: pd.DataFrame, i: int) -> dict[str, Bar]:
    o, h, lo, c, v = (float(x) for x in candles.iloc[i][["open", "high", "low", "close", "volume"]])
    return {SYMBOL: Bar(SYMBOL, candles.index[i], o, h, lo, c, v)}


@dataclass
class Replay:
    """What the replay recorded: stage times, feature rows, targets and risk outcomes."""

    times: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in STAGES})
    rows: list[np.ndarray] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    actions: dict[str, int] = field(
        default_factory=lambda: {"accept": 0, "resize": 0, "reject": 0, "no intent": 0}
    )


def replay_decisions(
    candles: pd.DataFrame,
    first: int,
    n_bars: int,
    feed: StrategyFeed,
    settings: Settings,
    probe_orders: int,
) -> tuple[Replay, Account]:
    """Every bar of the window through the live feed, the risk manager and the emulator."""
    model = feed.strategy
    assert isinstance(model, ModelBundleStrategy)
    manager = RiskManager(settings.risk)
    close = candles["close"].to_numpy(np.float64)
    step = candles.index[1] - candles.index[0]
    out = Replay()
    emu_cfg = EmulatorConfig(markets={VENUE_SYMBOL: SAMPLE}, history_bars=first + 1)
    account = Account(quote=float(emu_cfg.balances["USDT"]))
    with ExchangeEmulator(emu_cfg) as emu:
        client = emu.client()
        client.load_markets()
        limits = client.market(MARKET)["limits"]
        min_qty, min_cost = float(limits["amount"]["min"]), float(limits["cost"]["min"])
        for i in range(first, first + n_bars):
            assert emu.now == candles.index[i + 1], "emulator clock out of step"
            bars = as_bar(candles, i)
            t0 = time.perf_counter_ns()
            row = feed.at(i - first, bars)
            target = min(max(float(row.fraction[0]), 0.0), 1.0)  # spot: long or flat
            t3 = time.perf_counter_ns()
            price, now = float(close[i]), candles.index[i] + step
            held = account.base if account.base >= min_qty else 0.0
            holdings = {MARKET: Holding(held, price)} if held else {}
            portfolio = PortfolioSnapshot(account.equity(price), holdings)
            stop, _ = protective_levels(target, price, math.nan, float(row.stop_loss[0]))
            intent = intent_for_target(now, MARKET, target, price, portfolio, stop)
            approved = None
            if intent is None:
                manager.update_equity(now, portfolio.equity)
                out.actions["no intent"] += 1
            else:
                decision = manager.check(intent, portfolio)
                out.actions[decision.action] += 1
                approved = decision.approved_intent
            t4 = time.perf_counter_ns()
            order = None
            if approved is not None:
                qty = abs(approved.qty) if approved.qty > 0 else min(-approved.qty, account.base)
                qty = float(client.amount_to_precision(MARKET, qty))
                if qty >= min_qty and qty * price >= min_cost:
                    side = "buy" if approved.qty > 0 else "sell"
                    try:
                        order = client.create_order(MARKET, "market", side, qty)
                    except Exception as exc:  # keep the replay going; reported below
                        account.errors.append(f"{now}: {type(exc).__name__}: {exc}")
                else:
                    account.below_minimum += 1
            t5 = time.perf_counter_ns()
            for name in STAGES[:3]:
                out.times[name].append(model.timings[name])
            out.times["risk"].append(t4 - t3)
            if approved is not None:  # an order was considered for the exchange
                out.times["submit"].append(t5 - t4)
            out.times["total"].append(t5 - t0)
            if order is not None:
                account.orders += 1
                pnl = account.apply(order)
                if pnl is not None and account.base < min_qty:
                    manager.record_trade(now, pnl)
            out.rows.append(model.features(feed.ctx.history(SYMBOL), SYMBOL).to_numpy()[0])
            out.fractions.append(float(row.fraction[0]))
            out.stops.append(float(row.stop_loss[0]))
            if i + 2 < len(candles):
                emu.advance()
        account.final_equity = account.equity(float(close[first + n_bars - 1]))
        account.probe = submit_probe(client, probe_orders)
    return out, account


def skew(live: np.ndarray, batch: np.ndarray, columns: list[str]) -> dict[str, Any]:
    """Largest relative difference per column of the live rows from the batch rows."""
    scale = np.maximum(np.abs(batch), 1e-12)
    rel = np.nanmax(np.abs(live - batch) / scale, axis=0)
    worst = sorted(zip(columns, rel.tolist(), strict=True), key=lambda kv: -kv[1])
    return {
        "columns_over_1e-6_rel": sum(v > 1e-6 for _, v in worst),
        "worst": {k: float(v) for k, v in worst[:5]},
    }


def decision_latency(candles: pd.DataFrame, n_bars: int, probe_orders: int) -> dict[str, Any]:
    settings = Settings()
    config = ExperimentConfig.from_settings(settings)
    first = len(candles) - 1 - n_bars  # first decided bar; the last one still has a next bar
    bundle, train_s = train(candles.iloc[:first], config)
    start = time.perf_counter()
    env = Environment((SYMBOL,), TIMEFRAME, settings, bundle, {SYMBOL: candles.iloc[:first]})
    feed = StrategyFeed(ModelBundleStrategy(), env)
    model = feed.strategy
    assert isinstance(model, ModelBundleStrategy)
    seed_s = time.perf_counter() - start
    print(
        f"trained on {first:,} bars in {train_s:.1f} s; live feed seeded in {seed_s:.1f} s, "
        f"trailing feature window {model.features_window} bars (warm-up {model.warmup_bars})"
    )
    replay, account = replay_decisions(candles, first, n_bars, feed, settings, probe_orders)
    window = candles.index[first : first + n_bars]
    full = build_features(candles.iloc[: first + n_bars], bundle_specs(bundle), timeframe=TIMEFRAME)
    batch = bundle_targets(SYMBOL, candles.iloc[: first + n_bars], bundle, settings, TIMEFRAME)
    fractions, stops = np.asarray(replay.fractions), np.asarray(replay.stops)
    total = stats(replay.times["total"])
    return {
        "train_bars": first,
        "train_seconds": round(train_s, 2),
        "seed_seconds": round(seed_s, 2),
        "replay_bars": n_bars,
        "replay_window": [str(window[0]), str(window[-1])],
        "trailing_window_bars": model.features_window,
        "feature_warmup_bars": model.warmup_bars,
        "signal_thresholds": bundle.info.signal_thresholds,
        "stages": {s: stats(replay.times[s]) for s in STAGES},
        "submit_probe": stats(account.probe),
        "orders_submitted": account.orders,
        "orders_below_exchange_minimum": account.below_minimum,
        "order_errors": len(account.errors),
        "order_error_examples": account.errors[:3],
        "risk_actions": replay.actions,
        "final_equity_usdt": round(account.final_equity, 2),
        "p99_under_25ms": total.get("p99_ms", np.inf) < TARGET_P99_MS,
        "feature_skew_vs_batch": skew(
            np.asarray(replay.rows), full.frame.loc[window, model.columns].to_numpy(), model.columns
        ),
        "targets_vs_batch": {
            "fraction_bars_differing": int(
                (~np.isclose(fractions, batch.fraction.loc[window].to_numpy(), 0, 0, True)).sum()
            ),
            "stop_loss_max_rel_diff": float(
                np.nanmax(np.abs(stops / batch.stop_loss.loc[window].to_numpy() - 1.0))
            ),
            "nonzero_fractions": int(np.count_nonzero(np.nan_to_num(fractions))),
        },
    }


def trailing_window_features(
    candles: pd.DataFrame, first: int, context: int, n: int
) -> dict[str, float]:
    """The former feature stage (the whole default set, GARCH included, recomputed on the
    trailing ``context`` bars) on ``n`` bars: attribution of the change only."""
    specs = Settings().features.specs()
    out = []
    for i in range(first, first + n):
        t0 = time.perf_counter_ns()
        build_features(candles.iloc[i + 1 - context : i + 1], specs, timeframe=TIMEFRAME)
        out.append(time.perf_counter_ns() - t0)
    return stats(out)


PARITY_RISK = RiskConfig(limits=LimitsConfig(risk_per_trade=0.04, require_stop=False))


def paper_throughput(frame: pd.DataFrame, directory: str) -> dict[str, Any]:
    env = Environment((SYMBOL,), TIMEFRAME, Settings())
    feed = protect(StrategyFeed(SmaCross(short=True), env), 0.03, 0.06)
    with Ledger(Path(directory) / "ledger.db") as ledger:
        runner = paper_runner(
            [ReplayFeed(SYMBOL, frame, speed=0)], feed, ledger, BrokerConfig(), PARITY_RISK
        )
        start = time.perf_counter()
        summary = asyncio.run(runner.run())
        seconds = time.perf_counter() - start
    return {
        "ledger_dir": directory,
        "bars": summary.bars,
        "fills": summary.fills,
        "seconds": round(seconds, 3),
        "bars_per_s": round(summary.bars / seconds, 1),
    }


def replay_throughput(candles: pd.DataFrame, n_bars: int) -> dict[str, Any]:
    frame = candles.iloc[len(candles) - 1 - n_bars : len(candles) - 1]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["paper_runner_sqlite_disk"] = paper_throughput(frame, tmp)
    if Path("/dev/shm").is_dir():
        with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
            out["paper_runner_sqlite_tmpfs"] = paper_throughput(frame, tmp)
    targets = SmaCross(short=True).vectorized({SYMBOL: frame}).fraction.to_numpy()
    options = RunOptions(stop_loss=0.03, take_profit=0.06, benchmarks=False)
    start = time.perf_counter()
    managed = run_managed_backtest(
        {SYMBOL: frame}, targets, None, BrokerConfig(), PARITY_RISK, options
    )
    seconds = time.perf_counter() - start
    out["batch_run_managed_backtest"] = {
        "bars": len(frame),
        "fills": len(managed.result.fills),
        "seconds": round(seconds, 3),
        "bars_per_s": round(len(frame) / seconds, 1),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=10_000, help="replay window (closed bars)")
    parser.add_argument("--attribution-bars", type=int, default=500)
    parser.add_argument("--probe-orders", type=int, default=200)
    args = parser.parse_args()
    candles = load_sample(SAMPLE)
    wall = time.perf_counter()
    latency = decision_latency(candles, args.bars, args.probe_orders)
    first = latency["train_bars"]
    specs = Settings().features.specs()
    context = build_features(candles.iloc[:first], specs, timeframe=TIMEFRAME).dropped_warmup + 1
    n_attr = min(args.attribution_bars, args.bars)
    latency["former_trailing_window_features"] = {
        "window_bars": context,
        **trailing_window_features(candles, first, context, n_attr),
    }
    replay = replay_throughput(candles, args.bars)

    print(f"\ndecision latency per closed bar, {args.bars:,} bars ({latency['replay_window']})")
    print(f"{'stage':10s} {'n':>6s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}")
    for name, s in latency["stages"].items():
        if s["count"]:
            print(
                f"{name:10s} {s['count']:6d} {s['p50_ms']:8.2f} {s['p90_ms']:8.2f} "
                f"{s['p99_ms']:8.2f} {s['max_ms']:8.2f}"
            )
    p99 = latency["stages"]["total"]["p99_ms"]
    verdict = "PASS" if latency["p99_under_25ms"] else f"MISS by {p99 - TARGET_P99_MS:.2f} ms"
    s = latency["submit_probe"]
    if s["count"]:
        print(
            f"{'submit*':10s} {s['count']:6d} {s['p50_ms']:8.2f} {s['p90_ms']:8.2f} "
            f"{s['p99_ms']:8.2f} {s['max_ms']:8.2f}   (* probe orders outside the replay)"
        )
    print(f"total p99 {p99:.2f} ms vs target {TARGET_P99_MS:.0f} ms: {verdict}")
    s = latency["former_trailing_window_features"]
    print(
        f"former feature stage (whole set incl. GARCH on {s['window_bars']} trailing bars, first "
        f"{n_attr} bars): p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms"
    )
    print(
        f"orders submitted {latency['orders_submitted']}, below exchange minimum "
        f"{latency['orders_below_exchange_minimum']}, errors {latency['order_errors']}; "
        f"risk {latency['risk_actions']}"
    )
    worst = latency["feature_skew_vs_batch"]["worst"]
    print(f"live feature rows vs batch matrix, largest relative differences: {worst}")
    print(f"live targets vs batch pipeline: {latency['targets_vs_batch']}")
    print("\nreplay throughput")
    for name, r in replay.items():
        print(
            f"{name:30s} {r['bars']:6d} bars {r['seconds']:8.2f} s {r['bars_per_s']:10,.0f} bars/s"
        )
    out = {
        "benchmark": "live",
        "sample": SAMPLE,
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "decision_latency": latency,
        "replay_throughput": replay,
    }
    target = Path(__file__).parent / "results" / "live.json"
    target.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
