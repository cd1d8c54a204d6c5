"""Bearer tokens stored as salted PBKDF2-SHA256 hashes and checked in constant time.

A token that passed the slow check once is remembered by its SHA-256 digest (compared with
``hmac.compare_digest``), so the API answers fast for its user while a wrong token always costs
a full PBKDF2 derivation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

SCHEME = "pbkdf2_sha256"
ITERATIONS = 200_000
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class TokenHash:
    iterations: int
    salt: bytes
    digest: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_token() -> str:
    """A random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` of ``token`` (at least 16 characters)."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the token must have at least {MIN_TOKEN_LENGTH} characters")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", token.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def parse_token_hash(text: str) -> TokenHash:
    """The parts of a stored hash; ValueError naming what is wrong."""
    parts = text.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(f"expected {SCHEME}$ITERATIONS$SALT$HASH (aitrader serve --hash-token)")
    try:
        iterations, salt, digest = int(parts[1]), _unb64(parts[2]), _unb64(parts[3])
    except ValueError as exc:
        raise ValueError(f"malformed token hash: {exc}") from None
    if iterations < 1 or not salt or len(digest) != 32:
        raise ValueError("malformed token hash: iterations, salt or hash out of range")
    return TokenHash(iterations, salt, digest)


class TokenChecker:
    """Checks presented tokens against one stored hash, in constant time."""

    def __init__(self, token_hash: str) -> None:
        self._hash = parse_token_hash(token_hash)
        self._known: bytes | None = None
        self._lock = threading.Lock()

    def known(self, token: str | None) -> bool:
        """The token passed :meth:`check` before (a constant-time digest comparison, no
        PBKDF2: cheap enough for an event loop)."""
        if not token:
            return False
        known = self._known
        quick = hashlib.sha256(token.encode()).digest()
        return known is not None and hmac.compare_digest(quick, known)

    def check(self, token: str | None) -> bool:
        """The token matches the stored hash (PBKDF2 the first time, then :meth:`known`)."""
        if not token:
            return False
        if self.known(token):
            return True
        quick = hashlib.sha256(token.encode()).digest()
        h = self._hash
        derived = hashlib.pbkdf2_hmac("sha256", token.encode(), h.salt, h.iterations)
        if not hmac.compare_digest(derived, h.digest):
            return False
        with self._lock:
            self._known = quick
        return True
