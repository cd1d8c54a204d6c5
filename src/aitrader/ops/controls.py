"""What a monitor shows of a run and how an operator steers it, read from and written to the
run's ledger: the one place both ``aitrader control`` and the API's control routes go through.

The runner reads the ``pause`` and ``kill`` flags before every bar (:mod:`aitrader.live.runner`):
pause stops new decisions from the next bar on, resume lets the next bar decide again, kill
engages the risk manager's kill switch, which closes every position with reduce-only orders and
blocks new entries until the risk state is reset; flatten closes every position once through
the same risk-checked path and keeps the run flat until resume (:mod:`aitrader.live.flatten`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aitrader.live.flatten import FLATTEN
from aitrader.live.ledger import KILL, PAUSE, Ledger, LedgerRiskStateStore
from aitrader.live.records import Flag
from aitrader.live.runner import PROGRESS, STATUS

BREAKER_PREFIX = "circuit breaker tripped"
"""How the runner starts the pause reason it writes when its circuit breaker trips."""


@dataclass(frozen=True)
class Control:
    """One operator action: the flag it sets, to what, what it means for the run, and the
    flags it clears too."""

    flag: str
    on: bool
    said: str
    clears: tuple[str, ...] = ()


CONTROLS: dict[str, Control] = {
    "pause": Control(PAUSE, True, "paused: no new orders from the next bar on"),
    "resume": Control(PAUSE, False, "resumed: the next bar decides again", (FLATTEN,)),
    "kill": Control(KILL, True, "kill switch requested: positions close at the next bar"),
    "flatten": Control(
        FLATTEN, True, "flatten requested: positions close at the next bar, then flat until resume"
    ),
}


def apply_control(ledger: Ledger, action: str, reason: str) -> tuple[Flag, str]:
    """Write the flag of ``action`` (``pause``, ``resume``, ``kill``, ``flatten``) with
    ``reason`` (and clear those it clears, when set); the flag as stored and what it means."""
    control = CONTROLS[action]
    flags = ledger.flags()
    for name in control.clears:
        if name in flags and flags[name].on:
            ledger.set_flag(name, False, reason)
    return ledger.set_flag(control.flag, control.on, reason), control.said


def status_payload(ledger: Ledger, events: int = 10) -> dict[str, Any]:
    """What a monitor shows: flags, runtime status, progress, equity, positions, open orders,
    the kill switch and circuit breaker, and the latest events."""
    progress = ledger.load_state(PROGRESS) or {}
    flags = ledger.flags()
    pause, kill = flags.get(PAUSE, Flag(PAUSE)), flags.get(KILL, Flag(KILL))
    risk = LedgerRiskStateStore(ledger).load()
    status = ledger.load_state(STATUS) or {}
    return {
        "status": status.get("status", "unknown"),
        "reconciling": status.get("reconciling") or "",  # paused until the venue squares
        "paused": pause.on,
        "pause_reason": pause.reason if pause.on else "",
        "kill": kill.on,
        "flatten": flags.get(FLATTEN, Flag(FLATTEN)).on,
        "kill_switch": bool(risk is not None and risk.kill_switch),
        "circuit_breaker": pause.on and pause.reason.startswith(BREAKER_PREFIX),
        "bars": int(progress.get("bars", 0)),
        "last_bar": progress.get("last_bar"),
        "equity": ledger.equity_summary().last_equity,
        "positions": {s: p.qty for s, p in ledger.positions().items() if p.qty},
        "open_orders": [o.client_order_id for o in ledger.open_orders()],
        "events": [
            f"{e.time} {e.level} {e.kind}: {e.message}" for e in ledger.events(limit=events)
        ],
    }
