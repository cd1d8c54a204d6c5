"""Token hashes: made, parsed and checked; malformed ones refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrader.config import load_settings
from aitrader.errors import ConfigError
from aitrader.ops.auth import TokenChecker, hash_token, new_token, parse_token_hash


def test_the_right_token_passes_and_others_fail() -> None:
    token = new_token()
    checker = TokenChecker(hash_token(token, iterations=1000))
    assert checker.check(token) and checker.check(token)  # second time from the quick digest
    assert not checker.check(token + "x")
    assert not checker.check(token[:-1])
    assert not checker.check("")
    assert not checker.check(None)


def test_the_hash_holds_neither_the_token_nor_a_plain_digest() -> None:
    token = "correct horse battery staple"
    a, b = hash_token(token, iterations=1000), hash_token(token, iterations=1000)
    assert a != b  # salted
    assert token not in a and a.startswith("pbkdf2_sha256$1000$")
    assert parse_token_hash(a).iterations == 1000


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        hash_token("short")


def test_a_malformed_hash_in_the_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("api:\n  token_hash: sha1$abc\n")
    with pytest.raises(ConfigError, match=r"api\.token_hash.*pbkdf2_sha256\$ITERATIONS"):
        load_settings(path)
    good = hash_token("a-long-enough-token", iterations=1000)
    path.write_text(f"api:\n  token_hash: '{good}'\n  port: 9000\n")
    settings = load_settings(path)
    assert settings.api.token_hash == good and settings.api.host == "127.0.0.1"
