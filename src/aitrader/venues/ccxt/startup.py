"""Start-up of ``aitrader paper --exchange`` and ``aitrader live`` as an operator sees it:
transient failures retried, anything else one line with its cause and the fix (no empty ledger
file is left behind either: :func:`aitrader.live.build.run_ledger`)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import ccxt

from aitrader.errors import AitraderError, ConfigError
from aitrader.live.guard import backoff_delay
from aitrader.logsafe import short

log = logging.getLogger(__name__)

T = TypeVar("T")

START_ATTEMPTS = 3
"""Tries of the start-up calls (markets, clock, history) before giving up."""

_CAUSE = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class VenueUnreachable(AitraderError):
    """The exchange could not be reached at start-up (network, DNS, outage)."""


def retrying(call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()`` retried on transient network errors (not on a ban or a rate limit, which
    retrying would make worse) with a growing backoff."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return call()
        except ccxt.NetworkError as exc:
            if attempt == START_ATTEMPTS or isinstance(exc, ccxt.DDoSProtection):
                raise
            wait = backoff_delay(attempt, base=1.0, cap=10.0)
            log.info("start-up call failed, retrying in %.1f s: %s", wait, short(exc))
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def cause(exc: BaseException) -> str:
    """The root of a network error in a few words (``Connection refused``, ``Name or service
    not known``, ``503 Service Unavailable``): the innermost operating-system error of the
    chain, else the exception's own text."""
    seen: BaseException | None = exc
    texts: list[str] = []
    while seen is not None and len(texts) < 10:
        if isinstance(seen, OSError) and seen.strerror:
            return str(seen.strerror)
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    found = _CAUSE.search(" ".join(texts))
    return found.group(1).strip() if found else short(exc, 160)


@contextmanager
def venue_errors(exchange: str, url: str | None) -> Iterator[None]:
    """Turn the exchange's errors at start-up into one line with cause and fix."""
    where = url or f"{exchange}'s API"
    try:
        yield
    except ccxt.AuthenticationError as exc:
        raise ConfigError(
            f"{exchange} refused the API key ({short(exc, 160)}): check the key and secret "
            f"(AITRADER__SECRETS__EXCHANGES__{exchange.upper()}__API_KEY / __SECRET), their "
            "permissions (spot trading) and IP allow-list"
        ) from None
    except ccxt.NetworkError as exc:
        raise VenueUnreachable(
            f"cannot reach {exchange} at {where}: {cause(exc)} (after {START_ATTEMPTS} tries). "
            "Check the network, --api-url and the exchange's status, then run the same command "
            "again (the same --ledger resumes)"
        ) from None
    except ccxt.ExchangeError as exc:
        raise VenueUnreachable(
            f"{exchange} answered with an error at start-up: {short(exc, 200)}"
        ) from None
