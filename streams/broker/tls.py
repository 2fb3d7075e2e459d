"""The certificates of the secure local broker: a private CA and the two certificates it signs.

A secure broker (``streamlearn kafka start --secure``) speaks TLS, so it needs a certificate
its clients can check. Nothing here is meant to be trusted beyond this machine: the CA is
made for one broker home, and its key stays beside it. Everything is written once and
reused on restart; a certificate is issued again only when it is missing, expiring, does
not name the broker's host, or the CA that signed it is gone.

Files, under the ``tls`` directory of the broker's home (keys are PKCS#8 PEM, mode 0600):

``ca.pem``, ``ca-key.pem``
    The CA; ``ca.pem`` is what clients trust (``STREAMLEARN_KAFKA_SSL_CAFILE``).
``broker.pem``, ``broker-key.pem``
    The broker's chain (its certificate, then the CA's) and key.
``broker-keystore.pem``
    Key and chain in the one file Kafka's ``ssl.keystore.type=PEM`` reads.
``client.pem``, ``client-key.pem``
    A client certificate (``CN=streamlearn``) for clients that present one (mutual TLS).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streams.broker.files import write_atomically

#: Leaf certificates are issued again when they would expire within this margin.
RENEW_BEFORE = timedelta(days=30)
CA_LIFETIME = timedelta(days=3650)
LEAF_LIFETIME = timedelta(days=825)
#: The client certificate's subject; with ``ssl.principal.mapping.rules`` it maps to the
#: service user, so ACLs granted to it would hold for a pure mutual-TLS listener too.
CLIENT_NAME = "streamlearn"

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """Where the certificates of one broker home live."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def broker(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def broker_key(self) -> Path:
        return self.directory / "broker-key.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "broker-keystore.pem"

    @property
    def client(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"


def ensure_certificates(directory: Path, host: str) -> TlsFiles:
    """Write whatever certificate of a broker home is missing or no longer fit; keep the rest.

    Parameters
    ----------
    directory
        The ``tls`` directory of the broker's home; created (mode 0700) if missing.
    host
        The host clients connect to. The broker's certificate names it besides
        ``localhost``, ``127.0.0.1`` and ``::1``, so clients can check host names.

    Returns
    -------
    TlsFiles
        The paths of the files, all present.
    """
    files = TlsFiles(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_cert, ca_key = _load_ca(files, now) or _issue_ca(files, now)
    names = _server_names(host)
    if not _still_good(files.broker, files.broker_key, ca_cert, names, now):
        cert, key = _issue_leaf(ca_cert, ca_key, host, names, now, server=True)
        chain = _pem(cert) + _pem(ca_cert)
        _write_key(files.broker_key, key)
        write_atomically(files.broker, chain)
        write_atomically(files.keystore, _key_pem(key) + chain, private=True)
    elif not files.keystore.exists():
        keystore = files.broker_key.read_bytes() + files.broker.read_bytes()
        write_atomically(files.keystore, keystore, private=True)
    if not _still_good(files.client, files.client_key, ca_cert, [], now):
        cert, key = _issue_leaf(ca_cert, ca_key, CLIENT_NAME, [], now, server=False)
        _write_key(files.client_key, key)
        write_atomically(files.client, _pem(cert) + _pem(ca_cert))
    return files


def _server_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        extra: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        extra = x509.DNSName(host)
    if extra not in names:
        names.append(extra)
    return names


def _load_ca(files: TlsFiles, now: datetime) -> tuple[x509.Certificate, _Key] | None:
    if not (files.ca.exists() and files.ca_key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc <= now:
        return None
    return cert, key


def _still_good(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    names: list[x509.GeneralName],
    now: datetime,
) -> bool:
    """Whether a leaf on disk may be kept: signed by this CA, fresh, naming every name."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return False
    if not names:
        return True
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return all(name in san for name in names)


def _issue_ca(files: TlsFiles, now: datetime) -> tuple[x509.Certificate, _Key]:
    """A new CA, written; every leaf it did not sign is then issued again."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "streamlearn"),
            x509.NameAttribute(NameOID.COMMON_NAME, "streamlearn local Kafka CA"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(files.ca_key, key)
    write_atomically(files.ca, _pem(cert))
    return cert, key


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: _Key,
    common_name: str,
    names: list[x509.GeneralName],
    now: datetime,
    *,
    server: bool,
) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        # The broker also logs in to its own listeners as a client (inter-broker, controller),
        # and shows this certificate wherever one is requested: it keeps the client usage.
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(min(now + LEAF_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _Key) -> bytes:
    # Unencrypted PKCS#8: what Kafka's PEM keystore reads without an ``ssl.key.password``.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_key(path: Path, key: _Key) -> None:
    write_atomically(path, _key_pem(key), private=True)
