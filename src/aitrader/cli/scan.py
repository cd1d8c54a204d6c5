"""``aitrader scan [DATASET ...]``: the current trade plan per data set, or plans replayed.

Win probabilities come from one labelled source, printed with every result:

* ``--model DIR``: a trained model bundle (``aitrader train``); features are rebuilt with the
  bundle's own feature specs and refused if their hash differs. The signal thresholds the bundle
  tuned on its calibration slice replace the configured ones for the symbol:timeframe they were
  tuned for (a side that never reached the target win rate is disabled); which thresholds are in
  use is printed with the results;
* ``--probabilities FILE.parquet``: a ``p_up`` column (optional ``p_down``) indexed by
  timestamp, from anywhere (one data set at a time);
* otherwise ``--signal sma-cross``: NOT a model. A baseline whose long/flat state is mapped to
  ``p_up = max(long_threshold, lowest band) + 1e-6`` while SMA fast > SMA slow and 0.5 when
  flat: just enough to pass the threshold at the base size, so the EV gate and plan rules
  decide whether it trades. Its "probabilities" carry no information about the odds.

The signal EV gate uses the plans' own geometry (loss = ``stop_atr`` × ATR, win = ``tp1_r`` ×
that); each plan then recomputes EV from its actual stop and TP1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from aitrader.cli.common import (
    JsonOption,
    TrustBundleOption,
    console,
    emit_json,
    err_console,
    settings,
    table,
)
from aitrader.config import Settings
from aitrader.data.datasets import Dataset, load_dataset
from aitrader.data.store import Store
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.errors import ConfigError, DataError
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.plans import (
    PlanContext,
    PlanLevels,
    TradePlan,
    build_plans,
    make_plan,
    plan_levels,
    replay_plans,
)
from aitrader.strategy.signals import (
    Signal,
    SignalInputs,
    Signals,
    direction_probabilities,
    generate,
    resolve,
)

if TYPE_CHECKING:
    from aitrader.models.registry import BundleInfo

DEFAULT_DATASETS = ("sample:BTC-USD-1h", "sample:ETH-USD-1h")
SIGNAL_SOURCES = ("sma-cross",)
EPSILON = 1e-6
PLAN_FIELDS = ("entry", "stop", "tp1", "tp2", "leverage", "qty", "risk_amount", "validity_bars")
DatasetsArgument = typer.Argument(
    None, help="sample:NAME, EXCHANGE:SYMBOL:TIMEFRAME or a file (default: the BTC and ETH samples)"
)
ModelOption = typer.Option(None, "--model", help="Model bundle directory (from aitrader train).")
ProbabilitiesOption = typer.Option(
    None, "--probabilities", help="Parquet file: p_up (optional p_down) indexed by timestamp."
)


@dataclass(frozen=True)
class Probabilities:
    """Per-bar P(up) (and P(down), None: 1 − P(up)) on the candles' index, their source and,
    for a model bundle, its metadata (tuned thresholds)."""

    p_up: np.ndarray
    p_down: np.ndarray | None
    source: str
    bundle: BundleInfo | None = None


def outer_band(config: SignalConfig, spec: str | None) -> SignalConfig:
    """``--outer-band PROB[:MULT]`` applied to the outermost conviction band."""
    if spec is None:
        return config
    prob, _, mult = spec.partition(":")
    try:
        return config.with_outer_band(float(prob), float(mult) if mult else None)
    except ValueError as exc:
        raise ConfigError(f"--outer-band {spec!r}: {exc}") from None


def baseline_probabilities(
    candles: pd.DataFrame, config: SignalConfig, fast: int, slow: int
) -> Probabilities:
    """The sma-cross baseline mapped onto the probability scale (see the module docstring)."""
    state = sma_crossover_targets(candles["close"].to_numpy(np.float64), fast, slow)
    p_long = min(1.0, max(config.long_threshold, config.bands[0].min_prob) + EPSILON)
    p_up = np.where(state == 1.0, p_long, np.where(state == 0.0, 0.5, np.nan))
    source = (
        f"baseline sma-cross {fast}/{slow} — NOT a model: p_up = {p_long:.6f} while "
        f"SMA{fast} > SMA{slow}, else 0.5"
    )
    return Probabilities(p_up, None, source)


def _check_unit(values: np.ndarray, what: str) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise DataError(f"{what}: probabilities must lie in [0, 1]")
    return values


def file_probabilities(path: Path, candles: pd.DataFrame) -> Probabilities:
    """``p_up`` (and optional ``p_down``) from a Parquet file, aligned on the candles' times."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read probabilities ({exc})") from None
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    if "p_up" not in frame.columns or not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{path}: need a 'p_up' column indexed by timestamp")
    index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    frame = frame.set_axis(index.tz_convert("UTC")).reindex(candles.index)
    p_up = _check_unit(frame["p_up"].to_numpy(np.float64), f"{path} p_up")
    p_down = None
    if "p_down" in frame.columns:
        p_down = _check_unit(frame["p_down"].to_numpy(np.float64), f"{path} p_down")
    covered = int(np.isfinite(p_up).sum())
    return Probabilities(p_up, p_down, f"probabilities file {path} ({covered} bars covered)")


def model_probabilities(path: Path, loaded: Dataset, trust: bool = False) -> Probabilities:
    """Calibrated probabilities of a model bundle on features rebuilt with its own specs."""
    from aitrader.features.featureset import build_features
    from aitrader.features.spec import FeatureSpec
    from aitrader.models.registry import BundleError, load_bundle

    bundle = load_bundle(path, trust=trust)
    specs = bundle.info.model.get("features")
    if not specs:
        raise BundleError(f"{path}: the bundle does not list its feature specs")
    features = [FeatureSpec(**spec) for spec in specs]
    matrix = build_features(loaded.candles, features, timeframe=loaded.timeframe)
    bundle.check_features(matrix.spec_hash)
    rows = matrix.frame[np.isfinite(matrix.frame.to_numpy()).all(axis=1)]
    p_up, p_down = direction_probabilities(
        bundle.predictor.predict_proba(rows), bundle.predictor.classes
    )
    up = pd.Series(p_up, index=rows.index).reindex(loaded.candles.index)
    down = None
    if p_down is not None:
        down = pd.Series(p_down, index=rows.index).reindex(loaded.candles.index).to_numpy()
    name = f"model bundle {path} ({bundle.info.model.get('kind', '?')}, {bundle.info.label_name})"
    return Probabilities(up.to_numpy(np.float64), down, name, bundle.info)


def trade_signals(
    loaded: Dataset, probs: Probabilities, cfg: Settings, signal: SignalConfig
) -> tuple[Signals, PlanLevels]:
    """Signals through thresholds, bands and the EV gate, and the plan levels they used."""
    candles = loaded.candles
    levels = plan_levels(candles, cfg.plans)
    loss = cfg.plans.stop_atr * levels.atr / candles["close"].to_numpy(np.float64)
    regimes = None
    if signal.regime_overrides:
        from aitrader.strategy.modes import regime_labels

        regimes = regime_labels(candles, cfg.modes.regime).to_numpy()
    inputs = SignalInputs(probs.p_up, cfg.plans.tp1_r * loss, loss, probs.p_down, regimes)
    signals = generate(inputs, signal, cfg.costs, loaded.symbol, loaded.timeframe)
    return signals, levels


def _number(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.{digits}g}")
    return value


def current_plan(
    loaded: Dataset, signals: Signals, levels: PlanLevels, ctx: PlanContext, p_up: float
) -> dict[str, Any]:
    """The last bar's plan (or why there is none) as one flat row."""
    t = len(loaded.candles) - 1
    row: dict[str, Any] = {"dataset": loaded.name, "time": loaded.candles.index[t]}
    row |= {"p_up": _number(p_up), "side": int(signals.side[t])}
    if signals.side[t] == 0:
        empty = dict.fromkeys(PLAN_FIELDS)
        ev = _number(float(signals.ev[t]))
        return (
            row
            | empty
            | {"expected_value": ev, "status": "no signal"}
            | {"reason": signals.reason_text(t)}
        )
    one = Signal(int(signals.side[t]), float(signals.multiple[t]), float(signals.p_win[t]), 0, "")
    plan = make_plan(loaded.candles, levels, t, one, ctx)
    values = {k: _number(getattr(plan, k)) for k in PLAN_FIELDS}
    values |= {"expected_value": _number(plan.expected_value), "tp1_net": _number(plan.tp1_net)}
    return row | values | {"status": plan.status, "reason": plan.reason}


def one_at_a_time_return(replayed: pd.DataFrame, plans: list[TradePlan], equity: float) -> float:
    """Compounded net return taking plans in time order, one open at a time, at planned size."""
    accepted = [p for p in plans if p.status == "accepted"]
    busy_until: pd.Timestamp | None = None
    growth = 1.0
    for plan, (_, row) in zip(accepted, replayed.iterrows(), strict=True):
        if row["outcome"] == "expired" or (busy_until is not None and plan.time < busy_until):
            continue
        growth *= 1.0 + plan.qty * plan.entry / equity * float(row["net_return"])
        busy_until = row["exit_time"]
    return growth - 1.0


def history(
    loaded: Dataset, signals: Signals, levels: PlanLevels, ctx: PlanContext, cfg: Settings
) -> dict[str, Any]:
    """Plans over the whole history replayed (TP1 → break-even, ATR trail) and summarised."""
    plans = build_plans(loaded.candles, signals, ctx, levels)
    replayed = replay_plans(loaded.candles, plans, cfg.plans, cfg.costs)
    filled = replayed[replayed["outcome"] != "expired"]
    accepted = sum(p.status == "accepted" for p in plans)
    return {
        "dataset": loaded.name,
        "signals": len(plans),
        "accepted": accepted,
        "rejected": len(plans) - accepted,
        "outcomes": {k: int(v) for k, v in replayed["outcome"].value_counts().items()},
        "filled": len(filled),
        "win_rate": float((filled["net_return"] > 0).mean()) if len(filled) else math.nan,
        "avg_r": float(filled["r_multiple"].mean()) if len(filled) else math.nan,
        "avg_net_return": float(filled["net_return"].mean()) if len(filled) else math.nan,
        "total_return": one_at_a_time_return(replayed, plans, ctx.equity),
    }


@dataclass(frozen=True)
class ScanRequest:
    """Where probabilities come from and how plans are sized, for every data set."""

    model: Path | None
    probabilities: Path | None
    signal: str
    fast: int
    slow: int
    equity: float
    bars: int
    trust_bundle: bool = False


def probabilities_for(loaded: Dataset, req: ScanRequest, signal: SignalConfig) -> Probabilities:
    if req.model is not None:
        return model_probabilities(req.model, loaded, req.trust_bundle)
    if req.probabilities is not None:
        return file_probabilities(req.probabilities, loaded.candles)
    if req.signal not in SIGNAL_SOURCES:
        raise ConfigError(f"--signal {req.signal!r}: available: {', '.join(SIGNAL_SOURCES)}")
    return baseline_probabilities(loaded.candles, signal, req.fast, req.slow)


def scan_dataset(
    ref: str, cfg: Settings, signal: SignalConfig, req: ScanRequest, with_history: bool
) -> dict[str, Any]:
    """Current plan (and history summary) of one data set."""
    loaded = load_dataset(ref, Store(cfg.data.dir))
    if req.bars > 0:
        loaded = replace(loaded, candles=loaded.candles.iloc[-req.bars :])
    probs = probabilities_for(loaded, req, signal)
    note = None
    if probs.bundle is not None:
        from aitrader.models.registry import apply_thresholds

        signal, note = apply_thresholds(probs.bundle, signal, loaded.symbol, loaded.timeframe)
    signals, levels = trade_signals(loaded, probs, cfg, signal)
    ctx = PlanContext(
        loaded.symbol, loaded.timeframe, req.equity, cfg.costs, cfg.plans, cfg.risk.sizing, signal
    )
    plan = current_plan(loaded, signals, levels, ctx, float(probs.p_up[-1]))
    params = resolve(signal, loaded.symbol, loaded.timeframe)
    fields = ("long_threshold", "short_threshold", "min_ev", "allow_long", "allow_short")
    out: dict[str, Any] = {"source": probs.source, "plan": plan, "thresholds_note": note}
    out["thresholds"] = {k: getattr(params, k) for k in fields}
    if with_history:
        out["history"] = history(loaded, signals, levels, ctx, cfg)
    return out


def kill_switch_state(cfg: Settings) -> dict[str, Any] | None:
    """The persisted kill switch (None when no risk state file is configured or written)."""
    from aitrader.risk.state import JsonRiskStateStore

    if cfg.risk.state_path is None:
        return None
    state = JsonRiskStateStore(cfg.risk.state_path).load()
    if state is None:
        return None
    return {"engaged": state.kill_switch, "reason": state.kill_reason, "time": state.kill_time}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


PLAN_ROWS = (
    *(("time", "time"), ("p_up", "p_up"), ("side", "side"), ("entry", "entry")),
    *(("stop", "stop"), ("tp1", "TP1"), ("tp2", "TP2"), ("leverage", "leverage")),
    *(("qty", "size"), ("risk_amount", "risk"), ("validity_bars", "valid (bars)")),
    *(("expected_value", "EV"), ("status", "status"), ("reason", "reason")),
)
HISTORY_ROWS = (
    *(("signals", "signals"), ("accepted", "plans accepted"), ("filled", "filled")),
    *(("win_rate", "win rate"), ("avg_r", "avg R"), ("avg_net_return", "avg net return")),
    ("total_return", "total return"),
)
SIDES = {1: "long", -1: "short", 0: "flat"}


def _by_field(rows: list[dict[str, Any]], fields: tuple[tuple[str, str], ...]) -> list[list[str]]:
    """One table row per field, one column per data set."""
    cells = []
    for key, label in fields:
        values = [SIDES[r[key]] if key == "side" else _fmt(r.get(key)) for r in rows]
        cells.append([label, *values])
    return cells


def _print(results: list[dict[str, Any]], kill: dict[str, Any] | None) -> None:
    if kill is not None and kill["engaged"]:
        err_console.print(
            f"[bold red]KILL SWITCH ENGAGED[/] ({kill['reason']}): new entries are blocked "
            "until `aitrader risk reset`"
        )
    names = ["", *(r["plan"]["dataset"] for r in results)]
    plans = [r["plan"] for r in results]
    console.print(table("Current trade plans", names, _by_field(plans, PLAN_ROWS)))
    done = [r["history"] for r in results if "history" in r]
    if done:
        rows = _by_field(done, HISTORY_ROWS)
        keys = sorted({k for h in done for k in h["outcomes"]})
        rows += [[f"outcome {k}", *(str(h["outcomes"].get(k, 0)) for h in done)] for k in keys]
        console.print(table("Plans replayed over history, net of costs", names, rows))
        console.print(
            "total return: compounded at planned size, one plan open at a time; "
            "win rate, avg R and avg net return over filled plans"
        )
    for source in dict.fromkeys(r["source"] for r in results):
        console.print(f"probabilities: {source}")
    for note in dict.fromkeys(r["thresholds_note"] for r in results if r["thresholds_note"]):
        console.print(f"thresholds: {note}")


def scan_command(
    ctx: typer.Context,
    datasets: list[str] = DatasetsArgument,
    model: Path | None = ModelOption,
    trust_bundle: bool = TrustBundleOption,
    probabilities: Path | None = ProbabilitiesOption,
    signal: str = typer.Option(
        "sma-cross", "--signal", help="Baseline used without --model/--probabilities (NOT a model)."
    ),
    fast: int = typer.Option(10, "--fast", help="Fast SMA of the sma-cross baseline."),
    slow: int = typer.Option(30, "--slow", help="Slow SMA of the sma-cross baseline."),
    outer: str | None = typer.Option(
        None, "--outer-band", help="Outer band PROB[:MULT], e.g. 0.75:4."
    ),
    with_history: bool = typer.Option(False, "--history", help="Replay plans over the history."),
    equity: float = typer.Option(10_000.0, "--equity", help="Equity that sizes the plans."),
    bars: int = typer.Option(0, "--bars", help="Use only the last N bars (0: all)."),
    as_json: bool = JsonOption,
) -> None:
    """Current trade plan per data set (entry, stop, TP1/TP2, leverage, size, validity, EV).

    Example: aitrader scan sample:BTC-USD-1h --history --outer-band 0.75:4
    """
    cfg = settings(ctx)
    refs = list(datasets or DEFAULT_DATASETS)
    if model is not None and probabilities is not None:
        raise ConfigError("give --model or --probabilities, not both")
    if probabilities is not None and len(refs) > 1:
        raise ConfigError("--probabilities holds one series: scan one data set with it")
    if equity <= 0 or bars < 0:
        raise ConfigError("--equity must be > 0 and --bars ≥ 0")
    config = outer_band(cfg.signals, outer)
    req = ScanRequest(model, probabilities, signal, fast, slow, equity, bars, trust_bundle)
    results = [scan_dataset(ref, cfg, config, req, with_history) for ref in refs]
    kill = kill_switch_state(cfg)
    if as_json:
        from aitrader.analytics.metrics import json_safe

        emit_json(json_safe({"results": results, "kill_switch": kill}))
        return
    _print(results, kill)
