from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
from pathlib import Path

import pytest

from streams.broker.credentials import (
    SCRAM_ITERATIONS,
    ensure_credentials,
    scram_argument,
)
from streams.learning.errors import BrokerError


def test_passwords_are_drawn_once_stored_privately_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    first = ensure_credentials(path, None, formatted=False)
    assert len({first.admin, first.service, first.controller}) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", p) for p in vars(first).values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_credentials(path, None, formatted=True) == first
    assert not any(password in repr(first) for password in vars(first).values())


def test_the_operators_password_is_the_service_users(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    drawn = ensure_credentials(path, None, formatted=False)
    # Not formatted yet: the storage will be formatted with the one given now.
    chosen = ensure_credentials(path, "chosen", formatted=False)
    assert (chosen.service, chosen.admin) == ("chosen", drawn.admin)
    assert json.loads(path.read_text())["service"] == "chosen"
    assert ensure_credentials(path, "chosen", formatted=True) == chosen


def test_another_password_for_formatted_storage_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    ensure_credentials(path, "first", formatted=False)
    with pytest.raises(BrokerError, match="formatted with another password"):
        ensure_credentials(path, "second", formatted=True)
    with pytest.raises(BrokerError, match="must not be empty"):
        ensure_credentials(path, "", formatted=True)
    path.unlink()
    with pytest.raises(BrokerError, match="is gone, so nobody can log in"):
        ensure_credentials(path, None, formatted=True)


def scram_hi(password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5802's Hi(), spelled out: what a SCRAM-SHA-512 client derives from a password."""
    u = hmac.new(password, salt + b"\x00\x00\x00\x01", hashlib.sha512).digest()
    result = u
    for _ in range(iterations - 1):
        u = hmac.new(password, u, hashlib.sha512).digest()
        result = bytes(a ^ b for a, b in zip(result, u, strict=True))
    return result


def test_the_scram_argument_carries_the_salted_password_not_the_password() -> None:
    password = "pa,ss=w]ord"  # Kafka splits the argument at commas: the salt hides them
    argument = scram_argument("streamlearn", password)
    assert password not in argument
    match = re.fullmatch(
        r'SCRAM-SHA-512=\[name=streamlearn,iterations=(\d+),salt="([^"]+)",'
        r'saltedpassword="([^"]+)"\]',
        argument,
    )
    assert match is not None
    iterations, salt, salted = match.groups()
    assert int(iterations) == SCRAM_ITERATIONS
    expected = scram_hi(password.encode(), base64.b64decode(salt), SCRAM_ITERATIONS)
    assert base64.b64decode(salted) == expected
