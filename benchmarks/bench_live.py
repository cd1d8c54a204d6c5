"""Live decision latency and paper-runtime replay throughput on real BTC-USD 1h bars.

Decision latency: the default LightGBM chain (default ``Settings()`` feature set, labels, model)
is trained on the bars *before* the replay window only. Then, for every closed bar of the replay
window, the live decision path runs one bar at a time and each stage is timed with
``time.perf_counter_ns``:

* ``features``: the feature set on the shortest trailing window its warm-up allows
  (``dropped_warmup + 1`` bars), last row;
* ``model``: ``Predictor.predict_proba`` on that row;
* ``policy``: ``decide_bar`` (thresholds tuned on the bundle's calibration slice, EV gate with
  the average win / loss of the trailing returns) → target fraction (spot: long or flat);
* ``risk``: ``intent_for_target`` + ``RiskManager.check`` (default risk config, ATR stop);
* ``submit``: a market order through the real ccxt binance client to the local exchange
  emulator (only on bars where the risk manager approved an order of exchange-minimum size).

``total`` is the whole decision (the emulator's ``advance()`` to the next bar is not in it).

Replay throughput: ``paper_runner`` with a ``ReplayFeed`` (speed 0) over the same bars with
precomputed SMA(10/30) crossover targets and a SQLite ledger in a temporary directory (on disk,
and on tmpfs ``/dev/shm`` where it exists, to separate the fsync cost); the batch engine
(``run_managed_backtest``) on the same inputs as a reference. Prints a table and writes
``benchmarks/results/live.json``.

    python benchmarks/bench_live.py [--bars 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from aitrader.engine.backtest import RunOptions
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import run_managed_backtest
from aitrader.engine.managed_policy import ArrayFeed
from aitrader.features.featureset import build_features
from aitrader.live.emulator import EmulatorConfig, ExchangeEmulator
from aitrader.live.feeds import ReplayFeed
from aitrader.live.ledger import Ledger
from aitrader.live.runner import paper_runner
from aitrader.pipeline import STATS_WINDOW
from aitrader.risk.config import LimitsConfig, RiskConfig
from aitrader.risk.intents import Holding, PortfolioSnapshot, intent_for_target
from aitrader.risk.limits import RiskManager
from aitrader.strategy.signals import SignalInputs, decide_bar, direction_probabilities
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


def train(bars: pd.DataFrame, config: ExperimentConfig) -> tuple[Any, Any, float]:
    """The default chain on ``bars`` only; the signal config with its tuned thresholds."""
    start = time.perf_counter()
    prepared = prepare(bars, config.features, config.labels, config.costs, TIMEFRAME)
    bundle = train_bundle(prepared, config, SYMBOL, TIMEFRAME)
    tuned = bundle.info.thresholds()
    signals = config.signals if tuned is None else tuned.apply(config.signals)
    return bundle, signals, time.perf_counter() - start


def win_loss(close: np.ndarray, band: float) -> tuple[float, float]:
    """Average win / loss of the trailing bar returns (as the demo pipeline's EV gate)."""
    r = np.diff(close) / close[:-1]
    wins, losses = r[r > band], -r[r <= band]
    return (
        float(wins.mean()) if wins.size else np.nan,
        float(np.clip(losses, 0.0, None).mean()) if losses.size else np.nan,
    )


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


def decision_latency(candles: pd.DataFrame, n_bars: int, probe_orders: int) -> dict[str, Any]:
    settings = Settings()
    config = ExperimentConfig.from_settings(settings)
    specs = config.features.specs()
    first = len(candles) - 1 - n_bars  # first decided bar; the last one still has a next bar
    bundle, signal_cfg, train_s = train(candles.iloc[:first], config)
    predictor = bundle.predictor
    context = build_features(candles.iloc[:first], specs, timeframe=TIMEFRAME).dropped_warmup + 1
    print(f"trained on {first:,} bars in {train_s:.1f} s; trailing feature window {context} bars")
    full = build_features(candles, specs, timeframe=TIMEFRAME).frame  # for the skew check only
    atr_col = "atr_14_rel"  # atr(relative=True) of the default set: the stop distance
    top = max(b.multiple for b in signal_cfg.bands)
    band = settings.costs.round_trip
    manager = RiskManager(settings.risk)
    close = candles["close"].to_numpy(np.float64)
    step = candles.index[1] - candles.index[0]
    times: dict[str, list[int]] = {s: [] for s in STAGES}
    rows, actions = [], {"accept": 0, "resize": 0, "reject": 0, "no intent": 0}
    emu_cfg = EmulatorConfig(markets={VENUE_SYMBOL: SAMPLE}, history_bars=first + 1)
    account = Account(quote=float(emu_cfg.balances["USDT"]))
    with ExchangeEmulator(emu_cfg) as emu:
        client = emu.client()
        client.load_markets()
        limits = client.market(MARKET)["limits"]
        min_qty, min_cost = float(limits["amount"]["min"]), float(limits["cost"]["min"])
        for i in range(first, first + n_bars):
            assert emu.now == candles.index[i + 1], "emulator clock out of step"
            t0 = time.perf_counter_ns()
            window = candles.iloc[i + 1 - context : i + 1]
            row = build_features(window, specs, timeframe=TIMEFRAME).frame.iloc[-1:]
            t1 = time.perf_counter_ns()
            proba = predictor.predict_proba(row)
            t2 = time.perf_counter_ns()
            p_up, p_down = direction_probabilities(proba, predictor.classes)
            avg_win, avg_loss = win_loss(close[max(0, i - STATS_WINDOW) : i + 1], band)
            inputs = SignalInputs(
                float(p_up[0]),
                avg_win,
                avg_loss,
                None if p_down is None else float(p_down[0]),
            )
            signal = decide_bar(inputs, signal_cfg, settings.costs, SYMBOL, TIMEFRAME)
            target = min(max(signal.target / top, 0.0), 1.0)  # spot: long or flat
            t3 = time.perf_counter_ns()
            price, now = float(close[i]), candles.index[i] + step
            held = account.base if account.base >= min_qty else 0.0
            holdings = {MARKET: Holding(held, price)} if held else {}
            portfolio = PortfolioSnapshot(account.equity(price), holdings)
            atr = float(row[atr_col].iloc[0]) * price
            stop = price - settings.plans.stop_atr * atr if target > 0 else None
            intent = intent_for_target(now, MARKET, target, price, portfolio, stop)
            approved = None
            if intent is None:
                manager.update_equity(now, portfolio.equity)
                actions["no intent"] += 1
            else:
                decision = manager.check(intent, portfolio)
                actions[decision.action] += 1
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
            for name, value in zip(STAGES[:4], (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[name].append(value)
            if approved is not None:  # an order was considered for the exchange
                times["submit"].append(t5 - t4)
            times["total"].append(t5 - t0)
            if order is not None:
                account.orders += 1
                pnl = account.apply(order)
                if pnl is not None and account.base < min_qty:
                    manager.record_trade(now, pnl)
            rows.append(row.to_numpy()[0])
            if i + 2 < len(candles):
                emu.advance()
        final_equity = account.equity(float(close[first + n_bars - 1]))
        probe = submit_probe(client, probe_orders)
    batch = full.loc[candles.index[first : first + n_bars]].to_numpy()
    live = np.asarray(rows)
    scale = np.maximum(np.abs(batch), 1e-12)
    rel = np.nanmax(np.abs(live - batch) / scale, axis=0)
    skewed = {c: float(v) for c, v in zip(full.columns, rel, strict=True) if v > 1e-6}
    return {
        "train_bars": first,
        "train_seconds": round(train_s, 2),
        "replay_bars": n_bars,
        "replay_window": [str(candles.index[first]), str(candles.index[first + n_bars - 1])],
        "trailing_window_bars": context,
        "threshold": predictor.threshold,
        "stages": {s: stats(times[s]) for s in STAGES},
        "submit_probe": stats(probe),
        "orders_submitted": account.orders,
        "orders_below_exchange_minimum": account.below_minimum,
        "order_errors": len(account.errors),
        "order_error_examples": account.errors[:3],
        "risk_actions": actions,
        "final_equity_usdt": round(final_equity, 2),
        "p99_under_25ms": stats(times["total"]).get("p99_ms", np.inf) < TARGET_P99_MS,
        "feature_skew_vs_batch": {
            "columns_over_1e-6_rel": len(skewed),
            "worst": dict(sorted(skewed.items(), key=lambda kv: -kv[1])[:8]),
        },
    }


def features_without_garch(
    candles: pd.DataFrame, first: int, context: int, n: int
) -> dict[str, float]:
    """The feature stage with the GARCH spec left out, on ``n`` bars (attribution only)."""
    specs = [s for s in Settings().features.specs() if s.name != "garch"]
    out = []
    for i in range(first, first + n):
        t0 = time.perf_counter_ns()
        build_features(candles.iloc[i + 1 - context : i + 1], specs, timeframe=TIMEFRAME)
        out.append(time.perf_counter_ns() - t0)
    return stats(out)


PARITY_RISK = RiskConfig(limits=LimitsConfig(risk_per_trade=0.04, require_stop=False))


def paper_throughput(frame: pd.DataFrame, directory: str) -> dict[str, Any]:
    targets = sma_crossover_targets(frame["close"].to_numpy(np.float64), 10, 30, short=True)
    targets = targets[:, None]
    feed = ArrayFeed(targets, np.full((1, 1), np.nan), np.full((1, 1), 0.03), np.full((1, 1), 0.06))
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
    targets = sma_crossover_targets(frame["close"].to_numpy(np.float64), 10, 30, short=True)
    options = RunOptions(stop_loss=0.03, take_profit=0.06, benchmarks=False)
    start = time.perf_counter()
    managed = run_managed_backtest(
        {SYMBOL: frame}, targets[:, None], None, BrokerConfig(), PARITY_RISK, options
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
    first, context = latency["train_bars"], latency["trailing_window_bars"]
    n_attr = min(args.attribution_bars, args.bars)
    latency["features_without_garch"] = features_without_garch(candles, first, context, n_attr)
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
    s = latency["features_without_garch"]
    print(
        f"features without GARCH (first {n_attr} bars): p50 {s['p50_ms']:.2f} ms, "
        f"p99 {s['p99_ms']:.2f} ms"
    )
    print(
        f"orders submitted {latency['orders_submitted']}, below exchange minimum "
        f"{latency['orders_below_exchange_minimum']}, errors {latency['order_errors']}; "
        f"risk {latency['risk_actions']}"
    )
    skew = latency["feature_skew_vs_batch"]
    print(f"trailing-window features differing from batch (rel > 1e-6): {skew['worst']}")
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
