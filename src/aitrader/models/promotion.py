"""The retrain promotion gate: a challenger replaces the champion only when it is not worse.

:func:`retrain_job` (the scheduler's ``retrain`` job) trains a challenger from the current
settings on ``mlops.retrain.dataset`` and scores it walk-forward on the latest out-of-sample
window (the last ``mlops.retrain.folds`` folds) through the one evaluation path,
:func:`aitrader.validation.experiment.run_evaluate`, which trades the out-of-sample targets
through the risk-managed engine with costs. The champion's own experiment config (kept in its
``version.json``) is scored the same way on the same window. The challenger is stored as a new
version either way, and becomes the champion only when it is not worse on all of:

* DSR (deflated Sharpe ratio; higher is better),
* Brier score (lower is better),
* net Sharpe ratio (higher is better),

each within its tolerance. A champion without a stored config (promoted by hand from a bundle
trained elsewhere) is compared through the figures in its bundle when it has them. Every decision
is a ``model`` event in the ledger and a notification; a new champion ends a drift scaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.models.store import ModelStore, Version
from aitrader.ops.mlops_config import GateConfig, mlops_ledger
from aitrader.validation.experiment import ExperimentConfig, Source

Notify = Callable[[str], None]
GATED: tuple[tuple[str, int, str], ...] = (
    ("dsr", 1, "dsr_tolerance"),
    ("brier", -1, "brier_tolerance"),
    ("net_sharpe", 1, "sharpe_tolerance"),
)
"""The gated figures: name, direction (1: higher is better) and the tolerance's field."""
FIGURES = ("dsr", "pbo", "brier", "net_sharpe", "accuracy", "ece", "log_loss", "net_return")


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: list[str]


def gate(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None, cfg: GateConfig
) -> Verdict:
    """Whether the challenger is not worse than the champion on every gated figure."""
    if champion is None:
        return Verdict(True, ["no champion to beat"])
    reasons, worse = [], False
    for name, sign, tolerance_field in GATED:
        new, old = challenger.get(name, math.nan), champion.get(name, math.nan)
        tolerance = float(getattr(cfg, tolerance_field))
        if not math.isfinite(old):
            reasons.append(f"{name}: champion has none ({new:.4g})")
            continue
        if not math.isfinite(new):
            worse = True
            reasons.append(f"{name}: challenger has none (champion {old:.4g})")
            continue
        bad = sign * (new - old) < -tolerance
        worse |= bad
        mark = "worse" if bad else "ok"
        reasons.append(f"{name} {new:.4g} vs {old:.4g} ({mark})")
    return Verdict(not worse, reasons)


def score(source: Source, config: ExperimentConfig, folds: int, data_dir: Any) -> dict[str, Any]:
    """Walk-forward figures of ``config`` on the last ``folds`` folds of ``source``."""
    from aitrader.validation.experiment import run_evaluate

    validation = config.validation.model_copy(update={"max_folds": folds})
    evaluation, stats, _ = run_evaluate(
        source, config.model_copy(update={"validation": validation}), data_dir
    )
    figures = {k: float(v) for k, v in (evaluation.metrics | stats).items() if k in FIGURES}
    tests = evaluation.folds
    window = [str(tests["test_start"].iloc[0]), str(tests["test_end"].iloc[-1])]
    return {"figures": figures, "window": window}


def _champion_figures(
    champion: Version | None, source: Source, config: ExperimentConfig, folds: int, data_dir: Any
) -> tuple[dict[str, float] | None, str]:
    if champion is None:
        return None, "no champion"
    stored = champion.meta.get("config")
    if stored is not None:
        own = ExperimentConfig.model_validate(stored | {"tracking": config.tracking})
        return score(source, own, folds, data_dir)["figures"], "re-scored on the same window"
    if champion.metrics:
        return champion.metrics, "its stored figures (no config to re-score)"
    from aitrader.models.registry import load_info

    figures = load_info(champion.path).metrics
    return (figures or None), "its bundle's figures"


@dataclass(frozen=True)
class Outcome:
    """A retrain: the stored challenger, the champion it faced and the verdict."""

    version: Version
    champion: str | None
    verdict: Verdict

    def summary(self) -> str:
        name, new = self.version.name, self.version.id
        if self.verdict.promote:
            head = f"model {name}: {new} promoted" + (
                f" over {self.champion}" if self.champion else ""
            )
        else:
            head = f"model {name}: challenger {new} refused, {self.champion} stays champion"
        return f"{head} ({'; '.join(self.verdict.reasons)})"


def challenge(
    store: ModelStore,
    name: str,
    source: Source,
    config: ExperimentConfig,
    cfg: GateConfig,
    data_dir: Any,
) -> Outcome:
    """Train and score a challenger, store it, promote it when the gate passes."""
    from aitrader.validation.experiment import prepare_source, train_bundle

    scored = score(source, config, cfg.folds, data_dir)
    champion = store.champion(name)
    old, basis = _champion_figures(champion, source, config, cfg.folds, data_dir)
    verdict = gate(scored["figures"], old, cfg)
    bundle = train_bundle(prepare_source(source, config), config, source.symbol, source.timeframe)
    bundle = replace(bundle, info=replace(bundle.info, metrics=scored["figures"]))
    meta = {
        "dataset": source.name,
        "config": config.model_dump(mode="json", exclude_defaults=True),
        "metrics": scored["figures"],
        "window": scored["window"],
        "gate": {
            "champion": None if champion is None else champion.id,
            "champion_figures": old,
            "basis": basis,
            "promoted": verdict.promote,
            "reasons": verdict.reasons,
        },
    }
    version = store.add(name, bundle, meta)
    if verdict.promote:
        store.promote(name, version.id)
    return Outcome(version, None if champion is None else champion.id, verdict)


def announce(settings: Settings, notify: Notify, text: str, payload: Mapping[str, Any]) -> None:
    """A model decision as a ``model`` event in the run's ledger (``mlops.ledger``) and a
    notification; a changed champion ends the drift scaling (it was the old model's)."""
    from aitrader.live.ledger import DRIFT, Ledger
    from aitrader.live.records import secret_values

    path = mlops_ledger(settings)
    with Ledger(path, secret_values(settings.secrets)) as ledger:
        ledger.log_event("model", text, "info", dict(payload))
        if payload.get("champion_changed"):
            reason = f"cleared: new champion {payload.get('champion')}"
            ledger.save_state(DRIFT, {"size_multiplier": 1.0, "reason": reason, "level": "ok"})
    notify(text)


def _source(settings: Settings, dataset: str) -> Source:
    from aitrader.data.datasets import load_dataset
    from aitrader.data.store import Store

    loaded = load_dataset(dataset, Store(settings.data.dir))
    return Source(loaded.name, loaded.candles, loaded.timeframe, loaded.symbol, loaded.calendar)


def retrain_job(settings: Settings, notify: Notify) -> str:
    """The scheduler's ``retrain`` job: train, score, gate, store, maybe promote; one line."""
    cfg = settings.mlops
    if cfg.retrain.dataset is None:
        raise ConfigError(
            "mlops.retrain.dataset is not set: name the data the challenger trains on "
            "(sample:NAME, EXCHANGE:SYMBOL:TIMEFRAME or a file)"
        )
    store = ModelStore(cfg.store_root(settings.data.dir))
    source = _source(settings, cfg.retrain.dataset)
    config = ExperimentConfig.from_settings(settings)
    outcome = challenge(store, cfg.model, source, config, cfg.retrain, settings.data.dir)
    text = outcome.summary()
    payload = {
        "action": "retrain",
        "model": cfg.model,
        "version": outcome.version.id,
        "promoted": outcome.verdict.promote,
        "champion": outcome.version.id if outcome.verdict.promote else outcome.champion,
        "previous": outcome.champion,
        "champion_changed": outcome.verdict.promote,
        "reasons": outcome.verdict.reasons,
    }
    announce(settings, notify, text, payload)
    return text
