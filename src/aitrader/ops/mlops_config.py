"""The ``mlops`` config section: the model store, the retrain promotion gate, live model
metrics and drift checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from aitrader.frozen import Frozen


class GateConfig(Frozen):
    """The retrain job: what the challenger trains on and how it is compared with the champion
    (walk-forward on the latest out-of-sample window; promoted only when not worse on DSR,
    Brier and net Sharpe, each within its tolerance)."""

    dataset: str | None = Field(
        None, description="data the challenger trains on: sample:NAME, EXCHANGE:SYMBOL:TF, file"
    )
    folds: int = Field(3, ge=1, le=100, description="latest walk-forward folds scored")
    dsr_tolerance: float = Field(0.0, ge=0, le=1, description="DSR may drop by this much")
    brier_tolerance: float = Field(0.0, ge=0, le=1, description="Brier may rise by this much")
    sharpe_tolerance: float = Field(0.0, ge=0, description="net Sharpe may drop by this much")


class DriftConfig(Frozen):
    """Drift of the live model's inputs (PSI and KS per feature) and of its predicted
    probability (PSI) against the reference stored in its bundle at training time."""

    window: int = Field(500, ge=10, le=1_000_000, description="latest decisions compared")
    min_samples: int = Field(50, ge=5, description="fewer live decisions: no verdict")
    psi_warn: float = Field(0.1, gt=0, description="PSI at which a feature warns")
    psi_alert: float = Field(0.25, gt=0, description="PSI at which a feature alerts")
    ks_warn: float = Field(0.15, gt=0, le=1, description="KS statistic at which a feature warns")
    ks_alert: float = Field(0.3, gt=0, le=1, description="KS statistic at which it alerts")
    action: Literal["alert", "scale"] = Field(
        "alert", description="alert only, or alert and scale new entries until the next retrain"
    )
    size_multiplier: float = Field(0.5, gt=0, le=1, description="entry size while scaled")

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.psi_warn > self.psi_alert or self.ks_warn > self.ks_alert:
            raise ValueError("warn thresholds must not exceed the alert thresholds")
        return self


class MlopsConfig(Frozen):
    """Where versioned bundles live, which model the bot trades, and the run's ledger that
    decisions are read from (drift, live metrics) and model decisions are written to."""

    store: Path | None = Field(None, description="model store root (None: <data.dir>/models)")
    model: str = Field(
        "default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="name in the store"
    )
    ledger: Path | None = Field(
        None,
        description="the run's ledger (None: bot.ledger if set, else <store>/<model>/events.db)",
    )
    rolling: int = Field(500, ge=10, le=1_000_000, description="decisions in the live metrics")
    retrain: GateConfig = GateConfig()
    drift: DriftConfig = DriftConfig()

    def store_root(self, data_dir: Path) -> Path:
        return self.store if self.store is not None else Path(data_dir) / "models"

    def ledger_path(self, data_dir: Path, bot_ledger: Path | None = None) -> Path:
        """``ledger``; else the bot's run ledger (``bot.ledger``, when the config has a ``bot``
        section); else ``<store>/<model>/events.db``."""
        if self.ledger is not None:
            return self.ledger
        if bot_ledger is not None:
            return bot_ledger
        return self.store_root(data_dir) / self.model / "events.db"


def mlops_ledger(settings: Any) -> Path:
    """The ledger model decisions go to and drift reads: see :meth:`MlopsConfig.ledger_path`."""
    bot = settings.bot.ledger if "bot" in settings.model_fields_set else None
    return Path(settings.mlops.ledger_path(settings.data.dir, bot))
