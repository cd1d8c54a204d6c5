"""Tell apart the network failures that a retry will not fix, and say what to do about them.

A host that does not resolve, a port that refuses connections, a network that is unreachable and
a TLS handshake that fails do not heal in the next minute, so the sources stop at once with one
line naming the cause and the fix instead of backing off for a minute. Timeouts, resets, 429 and
5xx stay transient and are retried.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

_URL = re.compile(r"\b(https?://[^\s/'\"]+)")
_HOST = re.compile(r"host='([^']+)'(?:, port=(\d+))?")
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(exc: BaseException) -> str:
    """``host:port`` or the URL named anywhere in the chain's messages, else ``the server``."""
    for item in _chain(exc):
        text = str(item)
        host = _HOST.search(text)
        if host:
            return f"{host.group(1)}:{host.group(2)}" if host.group(2) else host.group(1)
        url = _URL.search(text)
        if url:
            return url.group(1)
    return "the server"


def has_default_route(route_table: Path = Path("/proc/net/route")) -> bool | None:
    """Whether this machine has an IPv4 default route (Linux); None when it cannot tell."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    return any(len(f) > 1 and f[1] == "00000000" for f in (line.split() for line in lines))


def permanent_network_failure(
    exc: BaseException, context: str, where: str | None = None
) -> str | None:
    """A one-line message when ``exc`` is a network failure no retry will fix, else None.

    ``where`` names the server (default: the host or URL found in the exception chain).
    """
    where = where or _where(exc)
    offline = has_default_route() is False
    no_network = "no network: this machine has no route to the internet; connect, then run again"
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            if offline:
                return f"{context}: {no_network} (cannot resolve {where})"
            return (
                f"{context}: cannot resolve {where} (DNS): no network or no DNS server, or a "
                "wrong host name in --api-url; check the connection and the address, then run "
                "again"
            )
        if isinstance(item, ConnectionRefusedError):
            return (
                f"{context}: {where} refused the connection: the venue is unreachable there "
                "(wrong --api-url or port, a proxy or firewall, or the service is down)"
            )
        if isinstance(item, ssl.SSLError):
            return (
                f"{context}: TLS handshake with {where} failed ({item.__class__.__name__}: "
                f"{item}); check the system clock, a proxy that intercepts TLS, and the "
                "URL's scheme"
            )
        if isinstance(item, OSError) and item.errno in _UNREACHABLE:
            return f"{context}: {no_network} ({where}: {item.strerror})"
    return None
