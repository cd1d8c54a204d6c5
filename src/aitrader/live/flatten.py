"""The operator's flatten control, as the runner obeys it.

``aitrader control flatten`` (or the API's ``/control/flatten``, or Telegram's ``/flatten``) sets
the ledger's ``flatten`` flag. Before its next bar the runner closes every position once, through
the policy's risk-checked, reduce-only path (the kill switch's path, orders tagged ``flatten``),
then stays flat — the bars are marked and the strategy observes them, but no target is asked —
until ``resume`` clears the flag. Unlike the kill switch it leaves the risk state alone.

A request is known by the time its flag was set: the one carried out is part of the runner's
checkpoint, so a restart neither repeats it nor forgets it. A bar redone after a crash or a
transient error sends the same client order ids, which brokers recognise, so nothing is doubled.
"""

from __future__ import annotations

import pandas as pd

from aitrader.engine.managed_policy import ManagedPolicy
from aitrader.live.ledger import Ledger
from aitrader.live.records import Flag

FLATTEN = "flatten"
"""The ledger flag of a flatten request (cleared by ``resume``)."""


class FlattenControl:
    """Which flatten request the runner has carried out; sets the policy's flatten mode."""

    def __init__(self, policy: ManagedPolicy, ledger: Ledger) -> None:
        self.policy, self.ledger = policy, ledger
        self.done: str | None = None  # the request (its flag's time) carried out
        self._pending: str | None = None

    def before_bar(self, flag: Flag | None, time: pd.Timestamp) -> bool | None:
        """None: no flatten request; True: this bar flattens (a new request); False: the
        request was carried out, stay flat (ask no target)."""
        self.policy.flattening = None
        if flag is None or not flag.on:
            return None
        request = "" if flag.updated_at is None else flag.updated_at.isoformat()
        if request == self.done:
            return False
        if request != self._pending:
            why = f" ({flag.reason})" if flag.reason else ""
            self.ledger.log_event("control", f"flattening every position at bar {time}{why}")
        self._pending = request
        self.policy.flattening = FLATTEN
        return True

    def after_bar(self) -> None:
        """The bar's decisions went through: a flatten in progress is carried out."""
        if self.policy.flattening is not None:
            self.done, self._pending = self._pending, None
            self.policy.flattening = None
