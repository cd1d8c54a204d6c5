"""Exchange calls with retries: network errors, ``Retry-After``, IP bans and a circuit breaker.

:class:`ExchangeCalls` wraps a ccxt client. A call that fails on a network error (timeout,
5xx, 429) is retried with exponential backoff and jitter, waiting at least the ``Retry-After``
the exchange asked for. Two answers are not retried blindly:

* **HTTP 418 (IP ban)** and a ``Retry-After`` longer than ``max_wait``: every request before
  the ban ends would extend it, so the client sends nothing until then — each call raises
  :class:`VenueUnavailable` at once, naming the end of the ban — and the runner pauses
  (reconciling) instead of hammering the venue.
* Order creation, which is never repeated blindly (see
  :meth:`aitrader.venues.ccxt.broker.ExchangeBroker.send`).

Each retry is a warning in the log and, when a ledger is attached, an event in the ledger.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import ccxt

from aitrader.errors import ConfigError
from aitrader.live.guard import CircuitBreaker, backoff_delay
from aitrader.logsafe import short
from aitrader.venues.base import TransientVenueError

if TYPE_CHECKING:
    from aitrader.live.ledger import Ledger

log = logging.getLogger(__name__)

BAN_DEFAULT = 120.0
"""Seconds a 418 without ``Retry-After`` keeps the client quiet."""


REJECTIONS: tuple[type[Exception], ...] = (
    ccxt.InvalidOrder,
    ccxt.InsufficientFunds,
    ccxt.BadSymbol,
    ccxt.PermissionDenied,
)
"""Errors meaning the exchange refused this order (recorded as rejected, not retried)."""

SETTLE_MARGIN = 1.5
"""Seconds past an order request's ``recvWindow`` before its fate counts as known: the venue
accepts requests stamped up to 1 s ahead of its clock, plus transit."""


@dataclass(frozen=True)
class MarketRules:
    """A spot market's trading rules as ccxt reports them."""

    symbol: str
    base: str
    quote: str
    min_amount: float
    min_cost: float

    @classmethod
    def of(cls, exchange: Any, symbol: str) -> MarketRules:
        try:
            market = exchange.market(symbol)
        except ccxt.BadSymbol as exc:
            raise ConfigError(f"{exchange.id} has no market {symbol}") from exc
        if not market.get("spot", False):
            raise ConfigError(f"{symbol} on {exchange.id} is not a spot market")
        limits = market.get("limits") or {}
        return cls(
            symbol,
            market["base"],
            market["quote"],
            float((limits.get("amount") or {}).get("min") or 0.0),
            float((limits.get("cost") or {}).get("min") or 0.0),
        )

    def refusal(
        self, qty: float, amount: float, price: float, held: float, cash: float
    ) -> str | None:
        """Why the signed ``qty`` (``amount`` once floored to the lot step) cannot be sent as
        it is — at ``price``, holding ``held``, with ``cash`` — or None: it rounds to nothing,
        falls below the minimum amount or notional, sells more than is held (spot) or buys more
        than the cash pays for."""
        what = f"{abs(qty):.10g} {self.base}"
        if amount <= 0.0:
            return f"{what} rounds to 0 at the market's lot step"
        if amount < self.min_amount or amount * price < self.min_cost:
            return (
                f"{amount} {self.base} (≈{amount * price:.2f} {self.quote}) is below the market "
                f"minimum (amount {self.min_amount}, notional {self.min_cost})"
            )
        if qty < 0 and amount > held * (1 + 1e-9):
            return f"selling {amount} {self.base} exceeds the {held:g} held (spot)"
        if qty > 0 and amount * price > cash * (1 + 1e-9):
            return (
                f"buying {amount} {self.base} (≈{amount * price:.2f} {self.quote}) exceeds the "
                f"{cash:.2f} {self.quote} cash"
            )
        return None


def refused(exc: Exception) -> bool:
    """A rate-limit answer: the request was refused, not executed (its fate is known)."""
    return isinstance(exc, ccxt.DDoSProtection)


class TransientExchangeError(TransientVenueError):
    """An exchange call still failed after its retries (network, 5xx, rate limit)."""


class VenueUnavailable(TransientExchangeError):
    """The venue asked this client to stay away (IP ban, long ``Retry-After``) for a while."""


P = ParamSpec("P")
R = TypeVar("R")


def translated(method: Callable[P, R]) -> Callable[P, R]:
    """A Broker call whose ccxt network errors reach the runtime as the venue's own
    :class:`TransientExchangeError` (the runner retries venue errors, it never sees ccxt's)."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except ccxt.NetworkError as exc:
            raise TransientExchangeError(f"{type(exc).__name__}: {short(exc)}") from exc

    return call


def banned(exc: Exception) -> bool:
    """An HTTP 418: the venue banned this IP (ccxt raises DDoSProtection for 418 and 429
    alike; its message carries the status)."""
    return isinstance(exc, ccxt.DDoSProtection) and " 418 " in f" {exc} "


class ExchangeCalls:
    """Exchange calls with retries on network errors, ``Retry-After`` and a circuit breaker."""

    def __init__(
        self,
        exchange: Any,
        breaker: CircuitBreaker | None = None,
        attempts: int = 5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ConfigError(f"attempts must be ≥ 1, got {attempts}")
        self.exchange, self.breaker = exchange, breaker
        self.attempts, self.max_wait, self.sleep = attempts, max_wait, sleep
        self.retries = 0  # calls retried so far (for reports)
        self.quiet_until = 0.0  # monotonic time before which nothing is sent (a ban)
        self.ledger: Ledger | None = None  # where retries are recorded, once attached

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``exchange.<method>(...)``, retried on network errors (safe for reads and cancels;
        an order is created with :meth:`ExchangeBroker.send`, which never repeats one blindly)."""
        for attempt in range(1, self.attempts + 1):
            self.check_quiet(method)
            self.release()
            try:
                result = getattr(self.exchange, method)(*args, **kwargs)
            except ccxt.NetworkError as exc:
                self.wait_after(method, exc, attempt)
                continue
            self.succeeded()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def check_quiet(self, method: str) -> None:
        """Raise :class:`VenueUnavailable` while the venue asked us to stay away."""
        left = self.quiet_until - time.monotonic()
        if left > 0:
            raise VenueUnavailable(
                f"{self.exchange.id} {method} not sent: the exchange asked us to stay away for "
                f"{left:.0f} s more (IP ban or Retry-After)"
            )

    def release(self) -> None:
        """Commit the ledger's open batch before a request goes out or a wait begins: what was
        recorded is on disk first, and no ledger lock is held while the network answers."""
        if self.ledger is not None:
            self.ledger.commit()

    def succeeded(self) -> None:
        if self.breaker is not None:
            self.breaker.success()

    def wait_after(self, method: str, exc: Exception, attempt: int) -> None:
        """Count a failed call; raise after the last attempt (at once on a ban or a
        ``Retry-After`` beyond ``max_wait``), else sleep the backoff (at least ``Retry-After``)."""
        if self.breaker is not None:
            self.breaker.failure(f"{method}: {type(exc).__name__}")
        asked = self.retry_after()
        if banned(exc) or asked > self.max_wait:
            wait = asked or BAN_DEFAULT
            self.quiet_until = time.monotonic() + wait
            what = "banned this IP (HTTP 418)" if banned(exc) else "asked for Retry-After"
            self.record(f"{self.exchange.id} {what}: no request for {wait:g} s", "error")
            raise VenueUnavailable(
                f"{self.exchange.id} {method}: the exchange {what}; nothing is sent for "
                f"{wait:g} s: {short(exc)}"
            ) from exc
        if attempt >= self.attempts:
            raise TransientExchangeError(
                f"{self.exchange.id} {method} failed {attempt} times: {type(exc).__name__}: "
                f"{short(exc)}"
            ) from exc
        wait = max(backoff_delay(attempt, base=0.25, cap=self.max_wait), asked)
        self.retries += 1
        self.record(
            f"{method} failed ({type(exc).__name__}); retry {attempt} in {wait:.2f} s", "warning"
        )
        self.sleep(wait)

    def record(self, message: str, level: str) -> None:
        """A retry or a ban: to the log and, when attached, to the ledger's events."""
        log.warning(message)
        if self.ledger is not None:
            self.ledger.log_event("exchange", message, level)
            self.release()  # kept even when the bar fails next, and no lock held while waiting

    def retry_after(self) -> float:
        """Seconds the last response's ``Retry-After`` header asked for (0: none)."""
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
        try:
            return max(0.0, float(value)) if value is not None else 0.0
        except ValueError:
            return 0.0
