"""The users of the secure local broker and their passwords, kept in one 0600 file.

Three principals exist on a secure broker: ``admin`` (a super user; the broker's own
inter-broker login and whoever grants ACLs), ``streamlearn`` (the service, limited by ACLs)
and ``controller`` (how the broker logs in to its KRaft controller listener). ``admin`` and
``streamlearn`` are SCRAM-SHA-512 users, written into the metadata log when the storage is
formatted; ``controller`` is a static PLAIN user of the controller listener, because a
controller cannot look SCRAM credentials up in the log it is itself serving.

Passwords are drawn with :mod:`secrets` unless the operator gives the service user's, and
are stored so that a restart logs in with what the storage was formatted with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streams.broker.files import write_atomically
from streams.learning.errors import BrokerError

ADMIN = "admin"
SERVICE_USER = "streamlearn"
CONTROLLER_USER = "controller"
MECHANISM = "SCRAM-SHA-512"
#: Kafka accepts 4096 to 16384 iterations for SCRAM-SHA-512.
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class Credentials:
    """The passwords of the three principals of one secure broker (never in its repr)."""

    admin: str = field(repr=False)
    service: str = field(repr=False)
    controller: str = field(repr=False)

    def password(self, user: str) -> str:
        """The password of a SCRAM user (``admin`` or ``streamlearn``)."""
        if user == ADMIN:
            return self.admin
        if user == SERVICE_USER:
            return self.service
        raise BrokerError(f"the secure broker has no user {user!r}; use {ADMIN} or {SERVICE_USER}")


def ensure_credentials(path: Path, service_password: str | None, *, formatted: bool) -> Credentials:
    """The broker's credentials: those stored at ``path``, else new ones written there.

    Parameters
    ----------
    path
        The 0600 JSON file in the broker's home.
    service_password
        The password the operator wants for ``streamlearn``; ``None`` keeps the stored one
        or draws one.
    formatted
        Whether the storage is formatted already: its SCRAM credentials are then fixed, and
        a different password for ``streamlearn`` is an error rather than an update.
    """
    if service_password == "":
        raise BrokerError(f"the password of Kafka user {SERVICE_USER!r} must not be empty")
    stored = _load(path)
    if stored is None:
        if formatted:
            raise BrokerError(
                f"the secure broker's storage is formatted but {path} is gone, so nobody can"
                f" log in; delete {path.parent} to start it afresh"
            )
        stored = Credentials(_draw(), service_password or _draw(), _draw())
        _save(path, stored)
    elif service_password is not None and service_password != stored.service:
        if formatted:
            raise BrokerError(
                f"the secure broker in {path.parent} was formatted with another password for"
                f" Kafka user {SERVICE_USER!r}; give that one, or delete {path.parent} to"
                " start afresh"
            )
        stored = Credentials(stored.admin, service_password, stored.controller)
        _save(path, stored)
    return stored


def scram_argument(name: str, password: str) -> str:
    """The value of ``kafka-storage format --add-scram`` that creates this SCRAM user.

    The salted password is computed here (SCRAM's ``Hi`` is PBKDF2 with the mechanism's
    HMAC) so the password itself never appears on a command line, and so that any character
    may be in it: Kafka's parser splits the argument at every comma.
    """
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    return (
        f"{MECHANISM}=[name={name},iterations={SCRAM_ITERATIONS},"
        f'salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{base64.b64encode(salted).decode()}"]'
    )


def _draw() -> str:
    # URL-safe characters only: these passwords also sit inside JAAS quotes.
    return secrets.token_urlsafe(24)


def _load(path: Path) -> Credentials | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise BrokerError(f"{path} is not readable JSON ({exc}); delete its directory") from None
    return Credentials(data["admin"], data["service"], data["controller"])


def _save(path: Path, credentials: Credentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(asdict(credentials)).encode(), private=True)
