"""The API's response and request bodies (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description="ok when the ledger can be read")


class Status(BaseModel):
    status: str = Field(description="runtime: ok, degraded (a feed stalled), stopped, unknown")
    reconciling: str = Field(
        "", description="why the run is paused, reconciling with the venue (empty: it is not)"
    )
    paused: bool
    pause_reason: str
    kill: bool = Field(description="the kill flag is set")
    flatten: bool = Field(False, description="flatten requested: flat until resume")
    kill_switch: bool = Field(description="the risk manager's kill switch is engaged")
    circuit_breaker: bool = Field(description="paused by the runner's circuit breaker")
    bars: int = Field(description="bars processed")
    last_bar: str | None
    equity: float | None
    positions: dict[str, float] = Field(description="non-flat positions: symbol -> quantity")
    open_orders: list[str] = Field(description="client order ids of orders still open")
    events: list[str] = Field(description="the latest events, oldest first")


class PositionOut(BaseModel):
    symbol: str
    qty: float
    avg_price: float
    realised_pnl: float


class OrderOut(BaseModel):
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    qty: float = Field(description="signed: > 0 buy, < 0 sell")
    type: str
    status: str
    limit_price: float | None
    stop_price: float | None
    reduce_only: bool
    filled_qty: float
    avg_fill_price: float
    reason: str
    intent_at: datetime
    closed_at: datetime | None
    error: str | None


class FillOut(BaseModel):
    trade_id: str
    time: datetime
    symbol: str
    side: int = Field(description="1 buy, -1 sell")
    qty: float
    price: float
    fee: float
    slippage: float
    liquidity: str
    client_order_id: str
    reason: str


class FillPage(BaseModel):
    total: int = Field(description="fills matching the filters")
    offset: int
    limit: int
    items: list[FillOut]


class TradeOut(BaseModel):
    """A round trip (flat to flat), built from the fills by the engine's trade book."""

    symbol: str
    side: int
    qty: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime | None = Field(description="None while the trade is open")
    exit_price: float | None
    pnl: float | None = Field(description="net of fees and slippage; None while open")
    fees: float
    exit_reason: str
    is_open: bool


class TradePage(BaseModel):
    total: int = Field(description="trades matching the filters")
    offset: int
    limit: int
    items: list[TradeOut]


class EquityPoint(BaseModel):
    time: datetime
    equity: float
    cash: float


class Equity(BaseModel):
    points: int = Field(description="snapshots in the ledger")
    first_equity: float | None
    last_equity: float | None
    peak_equity: float | None
    pnl: float | None = Field(description="last minus first snapshot's equity")
    drawdown: float | None = Field(description="1 - last / peak")
    curve: list[EquityPoint] = Field(description="the latest snapshots, oldest first")


class SignalOut(BaseModel):
    time: datetime
    symbol: str
    target: float = Field(description="target position, signed fraction of equity")
    details: dict[str, Any]


class RiskDecisionOut(BaseModel):
    time: datetime
    symbol: str
    action: str
    requested_qty: float
    approved_qty: float
    reason: str
    intent: str | None


class Risk(BaseModel):
    kill_switch: bool
    kill_reason: str
    kill_time: str | None
    peak_equity: float
    trades_today: int
    consecutive_losses: int
    cooldown_until: str | None
    counts: dict[str, int] = Field(description="risk verdicts by action")
    decisions: list[RiskDecisionOut] = Field(description="the latest verdicts, oldest first")


class EventOut(BaseModel):
    time: datetime
    level: str
    kind: str
    message: str


class Monitoring(BaseModel):
    status: str = Field(description="the watchdog's verdict: ok or degraded")
    since: str | None = Field(description="when the runtime last wrote its status")
    stalled: list[str] = Field(description="feeds with no bar for longer than the stall limit")
    last_bar: str | None
    feed_age_seconds: float | None = Field(description="wall seconds since the last bar's open")
    reconnects: int = Field(description="events that mention a reconnect")
    errors: int = Field(description="events at level warning or error")
    recent_errors: list[EventOut]


class ControlIn(BaseModel):
    reason: str = Field("set through the API", max_length=500, description="why (logged)")


class ControlOut(BaseModel):
    action: str
    flag: str
    on: bool
    reason: str
    message: str


class CalibrationBin(BaseModel):
    lower: float
    upper: float
    confidence: float | None = Field(description="mean top-class probability in the bin")
    accuracy: float | None = Field(description="how often the top class was the outcome")
    count: int


class LiveFigures(BaseModel):
    decisions: int = Field(0, description="the model's decisions in the rolling window")
    scored: int = Field(description="decisions whose outcome is known")
    hit_rate: float | None = Field(None, description="the top class was the outcome")
    brier: float | None = None
    ece: float | None = Field(None, description="expected calibration error (top label)")
    calibration: list[CalibrationBin] = []
    latency_ms: dict[str, float] = Field({}, description="decision latency: p50, max")
    note: str | None = None


class ModelOut(BaseModel):
    path: str = Field(description="the bundle or model store entry (its champion)")
    bundle: str = Field(description="the bundle's creation stamp (its decisions carry it)")
    label: str
    horizon: int
    classes: list[float]
    note: str | None = None


class MlMetrics(BaseModel):
    model: ModelOut | None
    live: LiveFigures
    backtest: dict[str, float | None] = Field(
        description="the bundle's walk-forward figures: accuracy (hit rate), brier, ece, ..."
    )
    drift: dict[str, Any] | None = Field(description="the latest drift check (see /drift)")


class DriftOut(BaseModel):
    level: str = Field(description="ok, warn, alert, or unknown (no verdict)")
    message: str
    checked_at: str | None = None
    size_multiplier: float = Field(1.0, description="applied to new entries (1: none)")
    report: dict[str, Any] | None = Field(None, description="PSI/KS per feature, prediction PSI")
