"""The drift check of the live model: its recorded decisions against its bundle's reference.

:func:`drift_job` (the scheduler's ``drift`` job) reads the latest ``mlops.drift.window``
decisions the champion made (the feature rows and class probabilities the model strategy
records with each decision) from the run's ledger and compares them with the reference stored
in the champion's bundle at training time (:mod:`aitrader.models.drift`): PSI and KS per
feature, PSI of the predicted P(up). The verdict — ``ok``, ``warn`` or ``alert`` by the
``mlops.drift`` thresholds — is saved as the ledger's ``drift`` state document (the API's
``/drift``), logged as a ``drift`` event and, unless ok, notified.

With ``action: scale`` an alert also sets ``size_multiplier`` in that document: the runner
hands it to the risk manager, which scales every new entry by it, until the next retrain
promotes a new champion (or a promote/rollback changes it), which clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.errors import ConfigError
from aitrader.live.ledger import DRIFT, Ledger
from aitrader.live.records import secret_values, utc_now
from aitrader.models.drift import DriftReport, Thresholds, drift_report
from aitrader.ops.mlops_config import DriftConfig, mlops_ledger

Notify = Callable[[str], None]


def live_inputs(decisions: pd.DataFrame, bundle: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature rows and P(up) of the decisions made by ``bundle`` (its ``created`` stamp;
    None: every decision that carries a feature row)."""
    rows, p_up = [], []
    for info in decisions["info"] if not decisions.empty else []:
        if not isinstance(info, dict) or "features" not in info:
            continue
        if bundle is not None and info.get("bundle") != bundle:
            continue
        rows.append({k: np.nan if v is None else float(v) for k, v in info["features"].items()})
        probabilities = info.get("probabilities") or {}
        p_up.append(float(probabilities.get("up", np.nan)))
    return pd.DataFrame(rows), np.asarray(p_up, dtype=np.float64)


@dataclass(frozen=True)
class DriftCheck:
    """What one check found: the report (None: no verdict), a one-line message, the state."""

    report: DriftReport | None
    message: str
    state: dict[str, Any]


def _thresholds(cfg: DriftConfig) -> Thresholds:
    return Thresholds(cfg.psi_warn, cfg.psi_alert, cfg.ks_warn, cfg.ks_alert)


def _message(model: str, report: DriftReport) -> str:
    worst = ", ".join(f"{f.name} PSI {f.psi:.3f} KS {f.ks:.3f}" for f in report.worst_features())
    text = (
        f"drift {report.level}: model {model}, {report.samples} decisions, prediction PSI "
        f"{report.prediction_psi:.3f}"
    )
    return text + (f"; worst: {worst}" if worst else "")


def _multiplier(cfg: DriftConfig, report: DriftReport, kept: float) -> float:
    """The entry-size multiplier: set by an alert with ``action: scale``; an earlier one (of
    the same bundle: ``kept``) stays until a retrain clears it."""
    if cfg.action == "scale" and report.level == "alert":
        return min(cfg.size_multiplier, kept)
    return kept


def check_drift(settings: Settings, ledger: Ledger) -> DriftCheck:
    """Compare the champion's recorded decisions with its bundle's reference."""
    from aitrader.models.registry import load_info

    cfg = settings.mlops
    path = cfg.store_root(settings.data.dir) / cfg.model
    if not path.is_dir():
        raise ConfigError(
            f"mlops.model {cfg.model!r}: no such model in the store {path.parent} (the retrain "
            "job or `aitrader models promote` puts one there)"
        )
    info = load_info(path)
    checked: dict[str, Any] = {"checked_at": utc_now().isoformat(), "model": cfg.model}
    checked["bundle"] = info.created
    held = ledger.load_state(DRIFT) or {}
    kept = float(held.get("size_multiplier", 1.0)) if held.get("bundle") == info.created else 1.0
    checked |= {"size_multiplier": kept, "reason": held.get("reason", "") if kept < 1 else ""}
    if info.reference is None:
        message = (
            f"drift: model {cfg.model} ({path}) has no drift reference: it was trained before "
            "bundles stored one; retrain it (`aitrader train` or the retrain job) to check drift"
        )
        return DriftCheck(None, message, checked | {"level": "unknown", "message": message})
    features, p_up = live_inputs(ledger.decisions(cfg.drift.window), info.created)
    if len(features) < cfg.drift.min_samples:
        message = (
            f"drift: model {cfg.model} has {len(features)} recorded decisions, fewer than "
            f"mlops.drift.min_samples ({cfg.drift.min_samples}); no verdict yet"
        )
        return DriftCheck(None, message, checked | {"level": "unknown", "message": message})
    report = drift_report(info.reference, features, p_up, _thresholds(cfg.drift))
    message = _message(cfg.model, report)
    multiplier = _multiplier(cfg.drift, report, kept)
    if multiplier < 1.0:
        message += f"; new entries sized ×{multiplier:g} until the next retrain"
    state = checked | {
        "level": report.level,
        "message": message,
        "size_multiplier": multiplier,
        "reason": f"model drift ({cfg.model})",
        "report": report.to_json(),
    }
    return DriftCheck(report, message, state)


LEVELS = {"ok": "info", "unknown": "info", "warn": "warning", "alert": "error"}


def drift_job(settings: Settings, notify: Notify) -> str:
    """The scheduler's ``drift`` job: check, save the verdict, log it, notify unless ok."""
    path = mlops_ledger(settings)
    with Ledger(path, secret_values(settings.secrets)) as ledger:
        found = check_drift(settings, ledger)
        ledger.save_state(DRIFT, found.state)
        level = str(found.state.get("level", "unknown"))
        told = level in ("warn", "alert")  # a watcher on this ledger leaves it to this job
        summary = {k: v for k, v in found.state.items() if k != "report"} | {"notified": told}
        ledger.log_event("drift", found.message, LEVELS.get(level, "info"), summary)
    if told:
        notify(found.message)
    return found.message
