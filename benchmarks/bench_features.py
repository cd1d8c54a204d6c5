"""Feature-engine speed: our API vs raw TA-Lib vs the `ta` package, and the full default set.

Builds N one-minute bars (default 1,000,000) by tiling the bundled real BTC-PERP 1m sample,
each copy rescaled to continue from the previous one's last close, on a continuous 1-minute
index. Times (best of ``--repeat`` runs, after a warm-up run that compiles numba code):

- the six core indicators (SMA20, EMA20, RSI14, MACD, BB20, ATR14) through our API, through
  TA-Lib directly and through `ta`;
- the full default feature set (``build_features``) against `ta` computing every indicator the
  two have in common.

Usage: python benchmarks/bench_features.py [--rows N] [--repeat R]
Writes benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ta
import talib

from aitrader.data.samples import load_sample
from aitrader.features import indicators
from aitrader.features.featureset import build_features
from aitrader.features.spec import FeaturesConfig

RESULTS = Path(__file__).parent / "results" / "features.json"
TA_SHARED = {
    "sma", "ema", "macd", "adx", "rsi", "stoch", "roc", "willr", "bbands", "atr", "keltner",
    "vwap", "obv",
}  # fmt: skip


def minute_bars(rows: int) -> pd.DataFrame:
    """``rows`` continuous 1-minute bars made of rescaled copies of the real BTC-PERP sample."""
    sample = load_sample("BTC-PERP-1m")
    prices = sample[["open", "high", "low", "close"]].to_numpy()
    volume = sample["volume"].to_numpy()
    copies, scale = [], 1.0
    step = prices[-1, 3] / prices[0, 0]
    for _ in range(rows // len(sample) + 1):
        copies.append(np.column_stack([prices * scale, volume]))
        scale *= step
    values = np.vstack(copies)[:rows]
    index = pd.date_range("2020-01-01", periods=rows, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(values, index=index, columns=["open", "high", "low", "close", "volume"])


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def core_six(df: pd.DataFrame) -> dict[str, dict[str, Callable[[], object]]]:
    """For each core indicator: our API, raw TA-Lib and `ta`."""
    h, lo, c = (np.ascontiguousarray(df[k].to_numpy()) for k in ("high", "low", "close"))
    hs, ls, cs = df["high"], df["low"], df["close"]
    return {
        "SMA20": {
            "ours": lambda: indicators.sma(c, 20),
            "talib": lambda: talib.SMA(c, 20),
            "ta": lambda: ta.trend.sma_indicator(cs, 20),
        },
        "EMA20": {
            "ours": lambda: indicators.ema(c, 20),
            "talib": lambda: talib.EMA(c, 20),
            "ta": lambda: ta.trend.ema_indicator(cs, 20),
        },
        "RSI14": {
            "ours": lambda: indicators.rsi(c, 14),
            "talib": lambda: talib.RSI(c, 14),
            "ta": lambda: ta.momentum.rsi(cs, 14),
        },
        "MACD": {
            "ours": lambda: indicators.macd(c),
            "talib": lambda: talib.MACD(c),
            "ta": lambda: _ta_macd(cs),
        },
        "BB20": {
            "ours": lambda: indicators.bbands(c, 20, 2.0),
            "talib": lambda: talib.BBANDS(c, 20, 2.0, 2.0),
            "ta": lambda: _ta_bb(cs),
        },
        "ATR14": {
            "ours": lambda: indicators.atr(h, lo, c, 14),
            "talib": lambda: talib.ATR(h, lo, c, 14),
            "ta": lambda: ta.volatility.average_true_range(hs, ls, cs, 14),
        },
    }


def _ta_macd(c: pd.Series) -> list[pd.Series]:
    m = ta.trend.MACD(c)
    return [m.macd(), m.macd_signal(), m.macd_diff()]


def _ta_bb(c: pd.Series) -> list[pd.Series]:
    b = ta.volatility.BollingerBands(c, 20, 2)
    return [b.bollinger_hband(), b.bollinger_mavg(), b.bollinger_lband()]


def _ta_bb_all(c: pd.Series) -> list[pd.Series]:
    b = ta.volatility.BollingerBands(c, 20, 2)
    return [*_ta_bb(c), b.bollinger_pband(), b.bollinger_wband()]


def ta_shared(df: pd.DataFrame) -> None:
    """Every indicator of the default set that `ta` also implements, computed with `ta`."""
    h, lo, c, v = df["high"], df["low"], df["close"], df["volume"]
    for window in (10, 20, 50, 200):
        ta.trend.sma_indicator(c, window)
    for window in (12, 26):
        ta.trend.ema_indicator(c, window)
    _ta_macd(c)
    adx = ta.trend.ADXIndicator(h, lo, c, 14)
    adx.adx(), adx.adx_pos(), adx.adx_neg()
    ta.momentum.rsi(c, 14)
    stoch = ta.momentum.StochasticOscillator(h, lo, c, 14, 3)
    stoch.stoch(), stoch.stoch_signal()
    ta.momentum.roc(c, 10)
    ta.momentum.williams_r(h, lo, c, 14)
    _ta_bb_all(c)
    ta.volatility.average_true_range(h, lo, c, 14)
    kc = ta.volatility.KeltnerChannel(h, lo, c, 20, 10, original_version=False)
    kc.keltner_channel_hband(), kc.keltner_channel_mband(), kc.keltner_channel_lband()
    ta.volume.volume_weighted_average_price(h, lo, c, v, 20)
    ta.volume.on_balance_volume(c, v)


def run(rows: int, repeat: int) -> dict[str, Any]:
    df = minute_bars(rows)
    core: dict[str, dict[str, float]] = {}
    for name, impls in core_six(df).items():
        core[name] = {impl: best(fn, repeat) for impl, fn in impls.items()}
    totals = {impl: sum(t[impl] for t in core.values()) for impl in ("ours", "talib", "ta")}
    spec = FeaturesConfig()
    start = time.perf_counter()
    matrix = build_features(df, spec, timeframe="1m")
    first_build = time.perf_counter() - start
    full = best(lambda: build_features(df, spec, timeframe="1m"), max(1, repeat - 1))
    shared = [s for s in spec.specs() if s.name in TA_SHARED and s.timeframe is None]
    shared_time = best(lambda: build_features(df, shared, timeframe="1m"), repeat)
    ta_time = best(lambda: ta_shared(df), 1)
    return {
        "rows": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "core_six_seconds": core,
        "core_six_total_seconds": totals,
        "wrapper_vs_talib": totals["ours"] / totals["talib"],
        "talib_speedup_vs_ta": totals["ta"] / totals["talib"],
        "ours_speedup_vs_ta": totals["ta"] / totals["ours"],
        "default_set": {
            "columns": len(matrix.columns),
            "rows_out": len(matrix.frame),
            "dropped_warmup": matrix.dropped_warmup,
            "first_build_seconds": first_build,
            "seconds": full,
        },
        "ta_shared_indicators_seconds": ta_time,
        "ours_shared_indicators_seconds": shared_time,
        "shared_indicators_speedup_vs_ta": ta_time / shared_time,
        "default_set_speedup_vs_ta_shared": ta_time / full,
        "targets": {
            "wrapper_within_1_5x_of_talib": totals["ours"] <= 1.5 * totals["talib"],
            "shared_indicators_10x_faster_than_ta": ta_time >= 10 * shared_time,
            "default_set_under_10s": full < 10.0,
        },
    }


def report(result: dict[str, Any]) -> None:
    print(f"{result['rows']:,} one-minute bars, {result['machine']['cpus']} CPUs")
    header = ("indicator", "ours (ms)", "TA-Lib (ms)", "ta (ms)", "ours/TA-Lib")
    print(f"{header[0]:<8} {header[1]:>10} {header[2]:>12} {header[3]:>10} {header[4]:>12}")
    for name, t in result["core_six_seconds"].items():
        print(
            f"{name:<8} {t['ours'] * 1e3:>10.2f} {t['talib'] * 1e3:>12.2f} "
            f"{t['ta'] * 1e3:>10.1f} {t['ours'] / t['talib']:>12.2f}"
        )
    tot = result["core_six_total_seconds"]
    print(
        f"{'total':<8} {tot['ours'] * 1e3:>10.2f} {tot['talib'] * 1e3:>12.2f} "
        f"{tot['ta'] * 1e3:>10.1f} {result['wrapper_vs_talib']:>12.2f}"
    )
    ds = result["default_set"]
    print(
        f"default set: {ds['columns']} columns, {ds['seconds']:.2f} s "
        f"(first build incl. numba compile/cache load {ds['first_build_seconds']:.2f} s)"
    )
    print(
        f"indicators of the default set that `ta` also has: ours "
        f"{result['ours_shared_indicators_seconds']:.2f} s, `ta` "
        f"{result['ta_shared_indicators_seconds']:.2f} s "
        f"-> {result['shared_indicators_speedup_vs_ta']:.1f}x"
    )
    print(
        f"whole default set ({ds['columns']} columns) vs `ta` on the shared ones only: "
        f"{result['default_set_speedup_vs_ta_shared']:.1f}x faster"
    )
    for target, ok in result["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = run(args.rows, args.repeat)
    report(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
