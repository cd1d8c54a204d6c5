"""Risk settings: sizing, limits and where the risk state (kill switch …) is persisted."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from aitrader.frozen import Frozen


class SizingConfig(Frozen):
    """How big a new position may be, applied by the RiskManager to every entry.

    ``target``: the strategy's target fraction is the size (the limits still cap it).
    ``fixed_fractional``: lose ``risk_pct`` of equity at the stop. ``kelly``: fractional Kelly
    from the last ``kelly_window`` closed trades (fixed fractional until 5 trades are known).
    ``vol_target``: exposure ``target_vol / σ``, σ the strategy's forecast when its target carries
    one (the model strategy with a GARCH volatility agent in its bundle: ``garch_sigma``), else
    the realised volatility over ``vol_window`` bars.
    For every method but ``target`` the strategy's fraction is the direction and a ceiling.
    """

    method: Literal["target", "fixed_fractional", "kelly", "vol_target"] = "target"
    risk_pct: float = Field(0.01, gt=0, le=0.2, description="equity risked to the stop per trade")
    kelly_fraction: float = Field(0.5, gt=0, le=1, description="share of the full Kelly bet")
    kelly_cap: float = Field(0.25, gt=0, le=1, description="largest Kelly fraction of equity")
    kelly_window: int = Field(50, ge=5, description="recent trades used for win rate and payoff")
    target_vol: float = Field(0.02, gt=0, le=1, description="target volatility per bar (fraction)")
    vol_method: Literal["realised", "garch"] = "realised"
    vol_window: int = Field(20, ge=2, description="bars of the realised-volatility estimate")
    max_leverage: float = Field(1.0, ge=1, le=125, description="largest notional / equity")


class LimitsConfig(Frozen):
    """Hard limits checked on every order intent; fractions are of current equity."""

    risk_per_trade: float = Field(0.02, gt=0, le=1, description="largest loss to the stop")
    require_stop: bool = Field(True, description="reject entries that carry no stop price")
    max_position: float = Field(1.0, gt=0, description="largest |position notional| per symbol")
    max_total_exposure: float = Field(2.0, gt=0, description="largest gross notional")
    max_correlated_exposure: float = Field(1.5, gt=0, description="largest correlated notional")
    correlation_threshold: float = Field(0.7, ge=0, le=1, description="what counts as correlated")
    max_daily_loss: float = Field(0.05, gt=0, le=1, description="loss from the UTC day's start")
    max_trades_per_day: int = Field(20, ge=1, description="entries per UTC day")
    drawdown_reduce_from: float = Field(0.10, ge=0, lt=1, description="drawdown where size shrinks")
    max_drawdown: float = Field(0.25, gt=0, le=1, description="drawdown where entries stop")
    kill_on_max_drawdown: bool = Field(True, description="engage the kill switch at max_drawdown")
    cooldown_after_losses: int = Field(3, ge=1, description="consecutive losses before a pause")
    cooldown_minutes: int = Field(240, ge=0, description="pause after that many losses")
    min_notional: float = Field(0.0, ge=0, description="smaller approved entries are rejected")

    @model_validator(mode="after")
    def _drawdown_order(self) -> LimitsConfig:
        if self.drawdown_reduce_from >= self.max_drawdown:
            raise ValueError("drawdown_reduce_from must be below max_drawdown")
        return self


class RiskConfig(Frozen):
    """Sizing, limits and the risk-state file (kill switch, day counters) that survives restarts."""

    sizing: SizingConfig = SizingConfig()
    limits: LimitsConfig = LimitsConfig()
    state_path: Path | None = Field(
        None, description="JSON file holding the kill switch and counters (None: in memory)"
    )
