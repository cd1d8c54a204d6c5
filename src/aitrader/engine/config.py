"""Simulated-broker settings: frozen, validated, realistic by default (costs from CostsConfig)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from aitrader.config import CostsConfig
from aitrader.engine.types import TimeInForce
from aitrader.frozen import Frozen

_COSTS = CostsConfig()

# Positions in the float64 parameter vector handed to the compiled kernel.
P_TAKER, P_MAKER, P_HALF_SPREAD, P_SLIP, P_IMPACT, P_VOL_SHARE = 0, 1, 2, 3, 4, 5
P_LEVERAGE, P_MM, P_MAX_POS, P_MAX_TOTAL, P_CASH, P_AT_CLOSE, P_TIF = 6, 7, 8, 9, 10, 11, 12
N_PARAMS = 13
TIF_CODES = {TimeInForce.GTC: 0.0, TimeInForce.IOC: 1.0, TimeInForce.FOK: 2.0}


class BrokerConfig(Frozen):
    """Costs, fills and margin of the simulated broker.

    Slippage of a market fill = half the spread + ``slippage_bps`` + ``impact`` × (fill qty / bar
    volume). A run with every cost at zero must say so with ``zero_cost=True``.
    """

    initial_cash: float = Field(10_000.0, gt=0, description="starting cash, quote currency")
    taker_fee: float = Field(_COSTS.taker_fee, ge=0, lt=0.05, description="market/stop fills")
    maker_fee: float = Field(_COSTS.maker_fee, ge=0, lt=0.05, description="resting limit fills")
    slippage_bps: float = Field(_COSTS.slippage_bps, ge=0, lt=500, description="per market fill")
    spread_bps: float = Field(0.0, ge=0, lt=1000, description="full bid-ask spread, bps")
    impact: float = Field(0.01, ge=0, le=10, description="extra slippage per unit volume share")
    max_volume_share: float | None = Field(
        0.1, gt=0, le=1, description="most of a bar's volume one order may take (None: no cap)"
    )
    fill_at: Literal["open", "close"] = Field(
        "open", description="decision at bar close; fill at the next open, or at that close"
    )
    time_in_force: TimeInForce = Field(TimeInForce.GTC, description="for target orders")
    leverage: float = Field(1.0, ge=1, le=125, description="notional / margin")
    maintenance_margin: float = Field(0.005, ge=0, lt=1, description="fraction of notional")
    max_position: float = Field(1.0, gt=0, description="largest |position| / equity per symbol")
    max_total: float = Field(1.0, gt=0, description="largest gross exposure / equity")
    zero_cost: bool = Field(False, description="must be True when every cost is zero")

    @model_validator(mode="after")
    def _zero_cost_is_explicit(self) -> BrokerConfig:
        free = self.is_cost_free
        if free and not self.zero_cost:
            raise ValueError("every cost is zero: a zero-cost run must set zero_cost=True")
        if self.zero_cost and not free:
            raise ValueError("zero_cost=True but some costs are not zero")
        return self

    @property
    def is_cost_free(self) -> bool:
        costs = (self.taker_fee, self.maker_fee, self.slippage_bps, self.spread_bps, self.impact)
        return all(c == 0 for c in costs)

    @classmethod
    def from_costs(cls, costs: CostsConfig, **overrides: Any) -> BrokerConfig:
        """Fees and slippage from the project's CostsConfig, anything else overridden."""
        base = {
            "taker_fee": costs.taker_fee,
            "maker_fee": costs.maker_fee,
            "slippage_bps": costs.slippage_bps,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def without_costs(cls, **overrides: Any) -> BrokerConfig:
        """An explicitly cost-free broker (labelled zero-cost in results)."""
        free = {"taker_fee": 0, "maker_fee": 0, "slippage_bps": 0, "spread_bps": 0, "impact": 0}
        return cls(**{**free, **overrides, "zero_cost": True})

    def params(self) -> np.ndarray:
        """The settings as the float64 vector the compiled kernel reads."""
        p = np.zeros(N_PARAMS)
        p[P_TAKER], p[P_MAKER] = self.taker_fee, self.maker_fee
        p[P_HALF_SPREAD] = self.spread_bps / 20_000
        p[P_SLIP], p[P_IMPACT] = self.slippage_bps / 10_000, self.impact
        p[P_VOL_SHARE] = np.inf if self.max_volume_share is None else self.max_volume_share
        p[P_LEVERAGE], p[P_MM] = self.leverage, self.maintenance_margin
        p[P_MAX_POS], p[P_MAX_TOTAL] = self.max_position, self.max_total
        p[P_CASH], p[P_AT_CLOSE] = self.initial_cash, float(self.fill_at == "close")
        p[P_TIF] = TIF_CODES[self.time_in_force]
        return p
