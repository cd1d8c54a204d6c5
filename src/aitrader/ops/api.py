"""The monitoring API (FastAPI) over one run's ledger.

``/health`` and ``/metrics`` answer without a token; every other route needs
``Authorization: Bearer TOKEN``, checked in constant time against the hash in the ``api``
config section. A missing or wrong token gets 401 with the same body and nothing else. Controls
write the ledger's flags through :func:`aitrader.ops.controls.apply_control`, as
``aitrader control`` does; the runner obeys them before its next bar.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aitrader import __version__
from aitrader.live.ledger import Ledger
from aitrader.live.ledger_reads import FillFilter
from aitrader.live.records import OrderStatus
from aitrader.ops import models as m
from aitrader.ops import views
from aitrader.ops.auth import TokenChecker
from aitrader.ops.cache import TtlCache
from aitrader.ops.controls import CONTROLS, apply_control, status_payload
from aitrader.ops.metrics import registry
from aitrader.ops.mlmetrics import MlSource

Clock = Callable[[], pd.Timestamp]
UNAUTHORIZED = {"detail": "unauthorized"}
BEARER = HTTPBearer(auto_error=False)


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _stamp(value: datetime | None) -> pd.Timestamp | None:
    """A query's time as UTC (naive: taken as UTC); 422 when pandas cannot hold it."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (OverflowError, ValueError) as exc:
        raise HTTPException(422, f"time {value.isoformat()} out of range: {exc}") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass(frozen=True)
class AppConfig:
    """How the API answers: the largest page, how long ``/status`` and ``/metrics`` answers
    are reused (seconds; 0: never), the wall clock (feed age), and the live model (``ml``)."""

    max_page: int = 1000
    cache_seconds: float = 1.0
    clock: Clock = _utc_now
    ml: MlSource = field(default_factory=MlSource)


def create_app(ledger: Ledger, checker: TokenChecker, config: AppConfig | None = None) -> FastAPI:
    """The API over ``ledger``; ``checker`` holds the token hash."""
    cfg = config or AppConfig()
    cache = TtlCache(cfg.cache_seconds)
    app = FastAPI(
        title="aitrader monitoring API",
        version=__version__,
        description="A run's state, trades and risk from its ledger; pause, resume and kill.",
    )

    async def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        """A known token on the event loop; the slow PBKDF2 check on a worker thread."""
        token = credentials.credentials if credentials is not None else None
        if checker.known(token) or await run_in_threadpool(checker.check, token):
            return
        raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})

    app.exception_handler(HTTPException)(_http_error)
    _open_routes(app, ledger, cfg.clock, cache)
    guarded = [Depends(authorised)]
    _read_routes(app, ledger, cfg, cache, guarded)
    _control_routes(app, ledger, cache, guarded)
    _ml_routes(app, ledger, cfg.ml, guarded)
    return app


async def cached(cache: TtlCache, key: Hashable, compute: Callable[[], bytes]) -> bytes:
    """A fresh cached answer on the event loop; else computed (ledger reads) on a worker
    thread, so the loop keeps serving while it runs."""
    hit = cache.fresh(key)
    if hit is not None:
        return hit
    return await run_in_threadpool(cache.get, key, compute)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = UNAUTHORIZED if exc.status_code == 401 else {"detail": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _open_routes(app: FastAPI, ledger: Ledger, clock: Clock, cache: TtlCache) -> None:
    reg = registry(ledger, clock)

    @app.get("/health", response_model=m.Health, tags=["open"])
    def health() -> m.Health:
        """ok when the ledger can be read (a container health check)."""
        ledger.flags()
        return m.Health(status="ok")

    @app.get("/metrics", tags=["open"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text: equity, P&L, positions, orders, fills, risk, feed lag, switches."""
        text = await cached(cache, "metrics", lambda: generate_latest(reg))
        return Response(text, media_type=CONTENT_TYPE_LATEST)


MAX_ROWS = 1_000_000_000
Limit = Annotated[int, Query(ge=1, le=MAX_ROWS, description="how many rows (capped by max_page)")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROWS, description="rows to skip")]
Side = Annotated[
    Literal["buy", "sell"] | None,
    Query(description="fills: buy or sell; trades: buy (long) or sell (short)"),
]
SIDES = {"buy": 1, "sell": -1, None: None}
Since = Annotated[datetime | None, Query(description="from this time (inclusive, ISO 8601)")]
Until = Annotated[datetime | None, Query(description="up to this time (inclusive, ISO 8601)")]


def _read_routes(
    app: FastAPI, ledger: Ledger, cfg: AppConfig, cache: TtlCache, guarded: list[Any]
) -> None:
    deps: list[Any] = guarded
    clock = cfg.clock
    _trade_routes(app, ledger, cfg, guarded)

    def capped(limit: int) -> int:
        return min(limit, cfg.max_page)

    def render_status(events: int) -> bytes:
        return m.Status(**status_payload(ledger, events)).model_dump_json().encode()

    @app.get("/status", response_model=m.Status, dependencies=deps, tags=["run"])
    async def status(events: Annotated[int, Query(ge=0, le=1000)] = 10) -> Response:
        """Flags, runtime status, progress, equity, positions, open orders, latest events."""
        body = await cached(cache, ("status", events), lambda: render_status(events))
        return Response(body, media_type="application/json")

    @app.get("/positions", response_model=list[m.PositionOut], dependencies=deps, tags=["run"])
    def positions() -> list[m.PositionOut]:
        """Net positions by symbol (flat ones included) with realised P&L."""
        return views.positions(ledger)

    @app.get("/equity", response_model=m.Equity, dependencies=deps, tags=["run"])
    def equity(limit: Limit = 500) -> m.Equity:
        """The equity curve's latest snapshots, P&L and drawdown."""
        return views.equity(ledger, capped(limit))

    @app.get("/signals", response_model=list[m.SignalOut], dependencies=deps, tags=["run"])
    def signals(symbol: str | None = None, limit: Limit = 100) -> list[m.SignalOut]:
        """The latest target positions the strategy asked for, with their details."""
        return views.signals(ledger, capped(limit), symbol)

    @app.get("/risk", response_model=m.Risk, dependencies=deps, tags=["run"])
    def risk(limit: Limit = 100) -> m.Risk:
        """The kill switch, risk counters and the latest risk verdicts."""
        return views.risk(ledger, capped(limit))

    @app.get("/monitoring", response_model=m.Monitoring, dependencies=deps, tags=["run"])
    def monitoring() -> m.Monitoring:
        """The watchdog: feed status and age, reconnects, errors."""
        return views.monitoring(ledger, clock())


def _trade_routes(app: FastAPI, ledger: Ledger, cfg: AppConfig, guarded: list[Any]) -> None:
    """Orders, fills and round trips: filtered, paged (pages capped at ``max_page``)."""
    deps: list[Any] = guarded
    book = views.TradeBookCache(ledger)

    def capped(limit: int) -> int:
        return min(limit, cfg.max_page)

    @app.get("/orders", response_model=list[m.OrderOut], dependencies=deps, tags=["run"])
    def orders(
        symbol: str | None = None,
        status: Annotated[Literal["open", "all"], Query()] = "open",
        limit: Limit = 100,
    ) -> list[m.OrderOut]:
        """Open orders (or all), the latest ``limit``, oldest first."""
        states = [s.value for s in OrderStatus if s.is_open] if status == "open" else None
        found = ledger.orders(symbol, statuses=states)
        return [views.order_out(o) for o in found[-capped(limit) :]]

    @app.get("/fills", response_model=m.FillPage, dependencies=deps, tags=["trades"])
    def fills(
        symbol: str | None = None,
        side: Side = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> m.FillPage:
        """Executions, oldest first, filtered and paged."""
        where = FillFilter(symbol, SIDES[side], _stamp(since), _stamp(until), capped(limit), offset)
        return views.fill_page(ledger, where)

    @app.get("/trades", response_model=m.TradePage, dependencies=deps, tags=["trades"])
    def trades(
        symbol: str | None = None,
        side: Side = None,
        is_open: bool | None = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> m.TradePage:
        """Round trips (flat to flat) by entry time, filtered and paged; P&L net of costs."""
        where = views.TradeFilter(
            symbol, SIDES[side], is_open, _stamp(since), _stamp(until), capped(limit), offset
        )
        return views.trades(book, where)


def _control_routes(app: FastAPI, ledger: Ledger, cache: TtlCache, guarded: list[Any]) -> None:
    deps: list[Any] = guarded

    def control(action: str, body: m.ControlIn | None) -> m.ControlOut:
        reason = (body or m.ControlIn()).reason
        flag, said = apply_control(ledger, action, reason)
        cache.clear()
        return m.ControlOut(
            action=action, flag=flag.name, on=flag.on, reason=flag.reason, message=said
        )

    def make(action: str) -> Callable[[m.ControlIn | None], m.ControlOut]:
        def route(body: m.ControlIn | None = None) -> m.ControlOut:
            return control(action, body)

        return route

    for action, spec in CONTROLS.items():
        app.post(
            f"/control/{action}",
            response_model=m.ControlOut,
            dependencies=deps,
            tags=["control"],
            summary=f"{action.capitalize()} the run",
            description=spec.said,
        )(make(action))


def _ml_routes(app: FastAPI, ledger: Ledger, source: MlSource, guarded: list[Any]) -> None:
    from aitrader.errors import ConfigError, DataError
    from aitrader.live.ledger import DRIFT
    from aitrader.ops.mlmetrics import ml_metrics

    deps: list[Any] = guarded

    @app.get("/ml-metrics", response_model=m.MlMetrics, dependencies=deps, tags=["model"])
    def ml() -> m.MlMetrics:
        """The live model's rolling hit rate, Brier score and calibration on realised
        outcomes, beside its walk-forward figures, and the latest drift check."""
        try:
            return m.MlMetrics(**ml_metrics(ledger, source))
        except (ConfigError, DataError) as exc:  # an unreadable bundle: said, not a 500
            live = m.LiveFigures(scored=0, note=f"model unavailable: {exc}")
            return m.MlMetrics(model=None, live=live, backtest={}, drift=ledger.load_state(DRIFT))

    @app.get("/drift", response_model=m.DriftOut, dependencies=deps, tags=["model"])
    def drift() -> m.DriftOut:
        """The latest drift check: PSI/KS per feature and of the predicted probability against
        the bundle's training reference, its level and the entry-size multiplier in force."""
        state = ledger.load_state(DRIFT) or {}
        fields = {k: state[k] for k in m.DriftOut.model_fields if k in state}
        fields.setdefault("level", "unknown")
        fields.setdefault("message", "no drift check has run (the scheduler's drift job)")
        return m.DriftOut(**fields)
