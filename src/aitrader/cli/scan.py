"""``aitrader scan [DATASET ...]``: the current trade plan per data set, and its backtest.

Plans come from the ``trade-plan`` strategy (:mod:`aitrader.strategies.trade_plan`) through the
Strategy contract; ``--history`` backtests that strategy over the data set on the engine's
risk-managed path (the one ``aitrader backtest`` and paper runs take), sized by the risk
manager. Win probabilities come from one labelled source, printed with every result:

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
from aitrader.errors import ConfigError
from aitrader.strategies.trade_plan import (
    Decisions,
    Probabilities,
    TradePlanStrategy,
    file_probabilities,
)
from aitrader.strategy.base import Environment
from aitrader.strategy.config import SignalConfig
from aitrader.strategy.signals import direction_probabilities, resolve

if TYPE_CHECKING:
    from aitrader.models.registry import ModelBundle

DEFAULT_DATASETS = ("sample:BTC-USD-1h", "sample:ETH-USD-1h")
SIGNAL_SOURCES = ("sma-cross",)
PLAN_FIELDS = ("entry", "stop", "tp1", "tp2", "leverage", "qty", "risk_amount")
DatasetsArgument = typer.Argument(
    None, help="sample:NAME, EXCHANGE:SYMBOL:TIMEFRAME or a file (default: the BTC and ETH samples)"
)
ModelOption = typer.Option(None, "--model", help="Model bundle directory (from aitrader train).")
ProbabilitiesOption = typer.Option(
    None, "--probabilities", help="Parquet file: p_up (optional p_down) indexed by timestamp."
)


def outer_band(config: SignalConfig, spec: str | None) -> SignalConfig:
    """``--outer-band PROB[:MULT]`` applied to the outermost conviction band."""
    if spec is None:
        return config
    prob, _, mult = spec.partition(":")
    try:
        return config.with_outer_band(float(prob), float(mult) if mult else None)
    except ValueError as exc:
        raise ConfigError(f"--outer-band {spec!r}: {exc}") from None


def model_probabilities(
    path: Path, loaded: Dataset, trust: bool = False
) -> tuple[Probabilities, ModelBundle]:
    """Calibrated probabilities of a model bundle on features rebuilt with its own specs, and
    the bundle (its agents take part in the plans: a GARCH agent's range stop)."""
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
    up = pd.Series(p_up, index=rows.index)
    down = None if p_down is None else pd.Series(p_down, index=rows.index)
    name = f"model bundle {path} ({bundle.info.model.get('kind', '?')}, {bundle.info.label_name})"
    return Probabilities(up, down, name), bundle


def _number(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.{digits}g}")
    return value


def current_plan(
    loaded: Dataset, strategy: TradePlanStrategy, decided: Decisions, equity: float
) -> dict[str, Any]:
    """The last bar's plan (or why there is none) as one flat row."""
    t = len(loaded.candles) - 1
    signals = decided.signals
    p_up = float(decided.p_up[t])
    row: dict[str, Any] = {"dataset": loaded.name, "time": loaded.candles.index[t]}
    row |= {"p_up": _number(p_up), "side": int(signals.side[t])}
    plan = strategy.plan(decided, t, loaded.symbol, equity)
    if plan is None:
        empty = dict.fromkeys(PLAN_FIELDS)
        ev = _number(float(signals.ev[t]))
        return (
            row
            | empty
            | {"expected_value": ev, "status": "no signal"}
            | {"reason": signals.reason_text(t)}
        )
    values = {k: _number(getattr(plan, k)) for k in PLAN_FIELDS}
    values |= {"expected_value": _number(plan.expected_value), "tp1_net": _number(plan.tp1_net)}
    return row | values | {"status": plan.status, "reason": plan.reason}


def history(
    loaded: Dataset, strategy: TradePlanStrategy, decided: Decisions, cfg: Settings, equity: float
) -> dict[str, Any]:
    """The strategy backtested over the data set (the engine's risk-managed path, costs on)."""
    from aitrader.engine.backtest import RunOptions
    from aitrader.engine.config import BrokerConfig
    from aitrader.strategy.run import RunSpec, backtest_strategy

    bars = np.flatnonzero(decided.signals.side != 0)
    plans = [strategy.plan(decided, int(t), loaded.symbol, equity) for t in bars]
    broker = BrokerConfig.from_costs(cfg.costs).model_copy(update={"initial_cash": equity})
    options = RunOptions(timeframe=loaded.timeframe, calendar=loaded.calendar, name="scan")
    spec = RunSpec(broker, cfg.risk, options)
    run = backtest_strategy(strategy, {loaded.symbol: loaded.candles}, cfg, spec)
    trades, fills = run.result.trades, run.result.fills
    closed = trades[~trades["is_open"].astype(bool)]
    return {
        "dataset": loaded.name,
        "signals": len(plans),
        "accepted": sum(p is not None and p.status == "accepted" for p in plans),
        "trades": len(trades),
        "exits": {str(k): int(v) for k, v in fills["reason"].value_counts().items()},
        "win_rate": float((closed["pnl"] > 0).mean()) if len(closed) else math.nan,
        "final_equity": float(run.result.equity.iloc[-1]),
        "total_return": float(run.result.equity.iloc[-1] / equity - 1.0),
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


def probabilities_for(
    loaded: Dataset, req: ScanRequest
) -> tuple[Probabilities | None, ModelBundle | None]:
    """The probabilities given (None: the strategy's SMA baseline) and the model bundle."""
    if req.model is not None:
        return model_probabilities(req.model, loaded, req.trust_bundle)
    if req.probabilities is not None:
        return file_probabilities(req.probabilities), None
    if req.signal not in SIGNAL_SOURCES:
        raise ConfigError(f"--signal {req.signal!r}: available: {', '.join(SIGNAL_SOURCES)}")
    return None, None


def scan_dataset(
    ref: str, cfg: Settings, signal: SignalConfig, req: ScanRequest, with_history: bool
) -> dict[str, Any]:
    """Current plan (and history summary) of one data set, from the trade-plan strategy."""
    loaded = load_dataset(ref, Store(cfg.data.dir))
    if req.bars > 0:
        loaded = replace(loaded, candles=loaded.candles.iloc[-req.bars :])
    probs, bundle = probabilities_for(loaded, req)
    note = None
    if bundle is not None:
        from aitrader.models.registry import apply_thresholds

        signal, note = apply_thresholds(bundle.info, signal, loaded.symbol, loaded.timeframe)
    strategy = TradePlanStrategy(fast=req.fast, slow=req.slow)
    strategy.use(probs, signal)
    strategy.setup(Environment((loaded.symbol,), loaded.timeframe, cfg, bundle))
    decided = strategy.decisions(loaded.candles, loaded.symbol)
    plan = current_plan(loaded, strategy, decided, req.equity)
    params = resolve(signal, loaded.symbol, loaded.timeframe)
    fields = ("long_threshold", "short_threshold", "min_ev", "allow_long", "allow_short")
    out: dict[str, Any] = {"source": decided.source, "plan": plan, "thresholds_note": note}
    out["thresholds"] = {k: getattr(params, k) for k in fields}
    if with_history:
        out["history"] = history(loaded, strategy, decided, cfg, req.equity)
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
    *(("qty", "size"), ("risk_amount", "risk")),
    *(("expected_value", "EV"), ("status", "status"), ("reason", "reason")),
)
HISTORY_ROWS = (
    *(("signals", "signals"), ("accepted", "plans accepted"), ("trades", "trades")),
    *(("win_rate", "win rate"), ("final_equity", "final equity"), ("total_return", "return")),
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
        keys = sorted({k for h in done for k in h["exits"]})
        rows += [[f"fills: {k}", *(str(h["exits"].get(k, 0)) for h in done)] for k in keys]
        console.print(table("Trade-plan strategy backtested over history", names, rows))
        console.print(
            "the backtest of `aitrader backtest --strategy trade-plan`: sized by the risk "
            "manager, costs on; win rate over closed trades"
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
    """Current trade plan per data set (entry, stop, TP1/TP2, leverage, size, EV), from the
    trade-plan strategy; --history trades its plans through the backtest engine.

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
