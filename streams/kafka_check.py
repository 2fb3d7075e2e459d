"""Whether a Kafka broker answers at the bootstrap servers, asked before a node starts.

Without the check, a worker started with no broker running fails deep inside aiokafka with
a ``KafkaConnectionError`` traceback that names neither the setting nor the fix, and a
worker with wrong security settings retries forever. The check connects to each bootstrap
server exactly as every client of the process will (same security options) and asks for
metadata:

- nobody answers (refused, dropped, timed out): wait a bounded time, since a broker started
  at the same moment (``docker compose up``, a test session) takes a few seconds to listen,
  then stop with one line that says where it looked and what to do;
- a broker answers but refuses these settings (wrong password, a mechanism it does not
  enable, a certificate nobody trusts, another security protocol on that port): stop at
  once with one line naming the cause and the setting to fix. Waiting would not help.

A refusal that a flaky network could also cause (a reset TLS handshake, a connection closed
before any answer) is believed only when the next attempt, a second later, sees it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.admin import SaslHandShakeRequest
from aiokafka.protocol.metadata import MetadataRequest

from streams.credentials import ClientOptions, client_options
from streams.learning.errors import (
    AuthenticationFailed,
    BrokerRefused,
    BrokerUnreachable,
    CertificateRejected,
    MechanismUnsupported,
    ProtocolMismatch,
)
from streams.settings import Settings

#: Pause between two attempts: short, so a worker goes on as soon as a starting broker listens.
RETRY_INTERVAL_SECONDS = 1.0
#: The longest one attempt may take: a firewalled address drops packets rather than refuses,
#: and the connection attempt would otherwise hang for the whole timeout.
ATTEMPT_TIMEOUT_SECONDS = 5.0
#: The longest a probe waits for its connection to be closed.
CLOSE_TIMEOUT_SECONDS = 1.0
#: OpenSSL's verification codes for a certificate issued to another name or address.
_NAME_MISMATCH = frozenset({62, 63, 64})
#: OpenSSL's verification codes for a certificate outside its validity period.
_EXPIRED = frozenset({9, 10})


@dataclass(frozen=True)
class _Outcome:
    """One attempt at one bootstrap server."""

    answered: bool = False
    #: Why the broker would not talk to this client; ``None`` when nobody answered at all.
    refusal: BrokerRefused | None = None
    #: A refusal a flaky network could also cause is believed only when seen twice.
    certain: bool = True


async def wait_for_broker(settings: Settings, timeout: float | None = None) -> None:
    """Return once a broker at the bootstrap servers answers a metadata request, connected
    with the security settings every client of this process uses.

    While attempts fail, aiokafka logs an error per attempt; those are silenced here, since
    the one line of the exception says all they would.

    Parameters
    ----------
    settings
        Bootstrap servers, security settings and ``kafka_connect_timeout_seconds``.
    timeout
        Seconds to keep trying; by default ``settings.kafka_connect_timeout_seconds``.

    Raises
    ------
    BrokerUnreachable
        No broker answered within ``timeout``; the message names the address and the fix.
    BrokerRefused
        A broker answered but refuses these security settings (one of its subclasses names
        the cause); raised as soon as it is known.
    TlsFilesUnusable
        The CA, certificate or key file does not load.
    """
    timeout = settings.kafka_connect_timeout_seconds if timeout is None else timeout
    servers = settings.kafka_bootstrap_servers
    hosts = [(host, port) for host, port, _ in collect_hosts(servers, randomize=False)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    suspected: BrokerRefused | None = None
    with quiet("aiokafka"):
        options = client_options(settings)
        while True:
            outcomes = []
            for host, port in hosts:
                attempt = min(ATTEMPT_TIMEOUT_SECONDS, max(deadline - loop.time(), 0.1))
                outcome = await _attempt(host, port, settings, options, attempt)
                if outcome.answered:
                    return
                outcomes.append(outcome)
            for outcome in outcomes:
                if outcome.refusal is not None and outcome.certain:
                    raise outcome.refusal
            doubtful = next((o.refusal for o in outcomes if o.refusal is not None), None)
            if doubtful is not None and suspected is not None and str(doubtful) == str(suspected):
                raise doubtful
            suspected = doubtful
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(RETRY_INTERVAL_SECONDS, remaining))
    if suspected is not None:
        raise suspected
    raise BrokerUnreachable(
        f"no Kafka broker answers at {servers} (waited {timeout:g} s); start a"
        " local one with `streamlearn kafka start`, or set STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"
    )


async def _attempt(
    host: str, port: int, settings: Settings, options: ClientOptions, timeout: float
) -> _Outcome:
    """Connect to one server (TLS, SASL) and ask it for metadata, all within ``timeout``."""
    try:
        await asyncio.wait_for(_ask(host, port, options, timeout), timeout)
    except UnsupportedSaslMechanismError:
        offered = await _offered_mechanisms(host, port, settings, options, timeout)
        return _Outcome(refusal=_unsupported_mechanism(host, port, settings, offered))
    except (KafkaError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        refusal, certain = _diagnose(exc, host, port, settings)
        return _Outcome(refusal=refusal, certain=certain)
    return _Outcome(answered=True)


async def _ask(host: str, port: int, options: ClientOptions, timeout: float) -> None:
    conn = await create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        await _close(conn)


def _diagnose(
    exc: BaseException, host: str, port: int, settings: Settings
) -> tuple[BrokerRefused | None, bool]:
    """The refusal an attempt's exception means, and whether it is certain; ``None`` when
    the exception only says that nobody answered."""
    address, protocol = f"{host}:{port}", settings.kafka_security_protocol
    check_protocol = (
        f"is the security protocol right? STREAMLEARN_KAFKA_SECURITY_PROTOCOL is {protocol}"
    )
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, (SaslAuthenticationFailed, AuthenticationFailedError)):
            return AuthenticationFailed(
                f"the Kafka broker at {address} rejected user {settings.kafka_sasl_username!r}"
                f" ({settings.kafka_sasl_mechanism}): wrong username or password; check"
                " STREAMLEARN_KAFKA_SASL_USERNAME and STREAMLEARN_KAFKA_SASL_PASSWORD"
            ), True
        if isinstance(cause, IllegalSaslStateError):
            plain = protocol.removeprefix("SASL_")
            return ProtocolMismatch(
                f"the Kafka broker at {address} does not expect SASL on this port: {check_protocol}"
                f" ({plain} would match this listener)"
            ), True
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _untrusted(cause, address, settings), True
        if isinstance(cause, ssl.SSLError) and _refuses_client_certificate(cause):
            fix = (
                "STREAMLEARN_KAFKA_SSL_CERTFILE is not one it trusts"
                if settings.kafka_ssl_certfile
                else "set STREAMLEARN_KAFKA_SSL_CERTFILE and STREAMLEARN_KAFKA_SSL_KEYFILE"
            )
            return CertificateRejected(
                f"the Kafka broker at {address} refused this client's TLS certificate"
                f" ({cause.reason}): it requires mutual TLS; {fix}"
            ), True
        if isinstance(cause, asyncio.IncompleteReadError) and not settings.kafka_uses_tls:
            if _is_tls_record(cause.expected):
                return ProtocolMismatch(
                    f"the Kafka broker at {address} answered in TLS: {check_protocol}"
                    " (SSL or SASL_SSL would match this listener)"
                ), True
    for cause in causes:
        if settings.kafka_uses_tls and isinstance(cause, (ConnectionResetError, ssl.SSLError)):
            return ProtocolMismatch(
                f"the Kafka broker at {address} broke off the TLS handshake: {check_protocol},"
                " and this port may not speak TLS"
            ), False
        if isinstance(cause, (asyncio.IncompleteReadError, ConnectionResetError)):
            hint = {
                "PLAINTEXT": ", and this listener may expect TLS or SASL",
                "SSL": ", and this listener may require SASL",
                "SASL_PLAINTEXT": ", and this listener may expect TLS",
            }.get(protocol, "")
            return ProtocolMismatch(
                f"the Kafka broker at {address} closed the connection before answering:"
                f" {check_protocol}{hint}"
            ), False
    return None, False


def _untrusted(
    exc: ssl.SSLCertVerificationError, address: str, settings: Settings
) -> CertificateRejected:
    """The line for a broker certificate this client does not accept."""
    why = exc.verify_message or str(exc.reason)
    if exc.verify_code in _NAME_MISMATCH:
        return CertificateRejected(
            f"the Kafka broker at {address} presented a certificate for another host name"
            f" ({why}); connect by a name the certificate lists, or set"
            " STREAMLEARN_KAFKA_SSL_CHECK_HOSTNAME=false to skip only this check"
        )
    if exc.verify_code in _EXPIRED:
        return CertificateRejected(
            f"the Kafka broker at {address} presented a certificate outside its validity"
            f" period ({why}): the broker's certificate needs renewing, or this clock is wrong"
        )
    trusted = settings.kafka_ssl_cafile
    now = f"it is {trusted}" if trusted else "unset, so the system's trust store is used"
    return CertificateRejected(
        f"the Kafka broker at {address} presented a certificate this client does not trust"
        f" ({why}); set STREAMLEARN_KAFKA_SSL_CAFILE to the CA that signed it ({now})"
    )


def _unsupported_mechanism(
    host: str, port: int, settings: Settings, offered: list[str] | None
) -> MechanismUnsupported:
    mechanism = settings.kafka_sasl_mechanism
    choice = "one the broker enables"
    if offered:
        choice = offered[0] if len(offered) == 1 else f"one of {', '.join(offered)}"
    offers = f" (it offers {', '.join(offered)})" if offered else ""
    return MechanismUnsupported(
        f"the Kafka broker at {host}:{port} does not enable SASL mechanism {mechanism}{offers};"
        f" set STREAMLEARN_KAFKA_SASL_MECHANISM to {choice}"
    )


async def _offered_mechanisms(
    host: str, port: int, settings: Settings, options: ClientOptions, timeout: float
) -> list[str] | None:
    """The SASL mechanisms the broker enables, from a handshake of our own: aiokafka drops
    the list the broker sends with its refusal. ``None`` when it cannot be had.

    The connection is the same minus SASL (which would fail again), and no password goes
    out on it: a handshake only names a mechanism.
    """
    unauthenticated = options.copy()
    unauthenticated["security_protocol"] = settings.kafka_security_protocol.removeprefix("SASL_")
    unauthenticated.pop("sasl_mechanism", None)
    unauthenticated.pop("sasl_plain_username", None)
    unauthenticated.pop("sasl_plain_password", None)

    async def ask() -> list[str]:
        conn = await create_conn(
            host, port, request_timeout_ms=int(timeout * 1000), **unauthenticated
        )
        try:
            response = await conn.send(SaslHandShakeRequest(settings.kafka_sasl_mechanism))
        finally:
            await _close(conn)
        return [str(m) for m in response.enabled_mechanisms]

    try:
        return await asyncio.wait_for(ask(), timeout) or None
    except (KafkaError, OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


async def _close(conn: Any) -> None:
    """Close an aiokafka connection and wait (briefly) until its socket is: ``close()`` only
    starts a TLS shutdown, and a socket still open when the loop ends is a ResourceWarning."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(conn.close()), CLOSE_TIMEOUT_SECONDS)


def _refuses_client_certificate(exc: ssl.SSLError) -> bool:
    """A TLS alert from the broker about this client's certificate (missing or untrusted)."""
    reason = str(exc.reason or "")
    return "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason)


def _is_tls_record(size: int | None) -> bool:
    """Whether the 4 bytes read as a Kafka message size are the start of a TLS record (a
    handshake or an alert, version 3.x): what a TLS listener sends a plaintext client."""
    return size is not None and size >> 24 in (0x15, 0x16) and (size >> 16) & 0xFF == 0x03


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


#: Per logger, the levels of the quiet spells under way and the level it had before them.
_QUIET: dict[str, tuple[list[int], int]] = {}
_QUIET_LOCK = threading.Lock()


@contextmanager
def quiet(name: str, below: int = logging.CRITICAL) -> Iterator[None]:
    """Drop records below ``below`` from logger ``name`` (and its children) for a while:
    the start-up checks end in one line of their own, not in a library's log."""
    logger = logging.getLogger(name)
    with _QUIET_LOCK:  # spells overlap (replays in threads, checks in tasks): count them
        spells = _QUIET.setdefault(name, ([], logger.level))[0]
        spells.append(below)
        logger.setLevel(max(spells))
    try:
        yield
    finally:
        with _QUIET_LOCK:
            spells, level = _QUIET[name]
            spells.remove(below)
            logger.setLevel(max(spells) if spells else level)
            if not spells:
                del _QUIET[name]
