"""Binance's request signing, checked as Binance checks it (SIGNED endpoints).

The API key comes in the ``X-MBX-APIKEY`` header; ``signature`` is the hex HMAC-SHA256, keyed by
the secret, of ``totalParams`` = the query string followed by the request body (each without
the ``signature`` parameter, exactly as sent); ``timestamp`` must satisfy
``server - recvWindow <= timestamp < server + 1000`` (ms, wall clock) with ``recvWindow``
(default 5000) at most 60000.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from aitrader.emulator.venue import VenueError

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60_000
AHEAD_MS = 1000


def _without_signature(raw: str) -> tuple[str, str | None]:
    parts = raw.split("&") if raw else []
    kept = [p for p in parts if not p.startswith("signature=")]
    signatures = [p.removeprefix("signature=") for p in parts if p.startswith("signature=")]
    return "&".join(kept), (signatures[-1] if signatures else None)


def verify(
    api_key: str | None,
    raw_query: str,
    raw_body: str,
    params: Mapping[str, str],
    keys: Mapping[str, str],
    now_ms: int | None = None,
) -> None:
    """Raise VenueError with Binance's code when the request is not properly signed."""
    secret = keys[check_key(api_key, keys)]
    _check_timestamp(params, int(time.time() * 1000) if now_ms is None else now_ms)
    query, from_query = _without_signature(raw_query)
    body, from_body = _without_signature(raw_body)
    signature = from_body or from_query
    if not signature:
        raise VenueError(
            -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
        )
    expected = hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise VenueError(-1022, "Signature for this request is not valid.")


def check_key(api_key: str | None, keys: Mapping[str, str]) -> str:
    """The API key itself where it is one of ``keys`` (USER_STREAM endpoints need no more)."""
    if not api_key:
        raise VenueError(-2014, "API-key format invalid.", 401)
    if api_key not in keys:
        raise VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return api_key


def verify_ws(
    params: Mapping[str, object], keys: Mapping[str, str], now_ms: int | None = None
) -> str:
    """Check a signed WebSocket API request's ``params``; the API key it was signed for.

    The key is the ``apiKey`` parameter; the signature covers every other parameter sorted by
    name as ``name=value`` joined with ``&`` (what the WebSocket API specifies).
    """
    raw_key = params.get("apiKey")
    api_key = check_key(raw_key if isinstance(raw_key, str) else None, keys)
    text = {k: str(v) for k, v in params.items()}
    _check_timestamp(text, int(time.time() * 1000) if now_ms is None else now_ms)
    signature = text.get("signature")
    if not signature:
        raise VenueError(
            -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
        )
    payload = "&".join(f"{k}={v}" for k, v in sorted(text.items()) if k != "signature")
    expected = hmac.new(keys[api_key].encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise VenueError(-1022, "Signature for this request is not valid.")
    return api_key


def _check_timestamp(params: Mapping[str, str], server_ms: int) -> None:
    try:
        stamp = int(params["timestamp"])
    except (KeyError, ValueError):
        raise VenueError(
            -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        ) from None
    try:
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW))
    except ValueError:
        raise VenueError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
    if window > MAX_RECV_WINDOW:
        raise VenueError(-1131, "recvWindow must be less than 60000")
    if stamp >= server_ms + AHEAD_MS:
        raise VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - stamp > window:
        raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")
