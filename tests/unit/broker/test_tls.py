from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from streams.broker.tls import TlsFiles, ensure_certificates

KEYS = ("ca_key", "broker_key", "keystore", "client_key")
CERTS = ("ca", "broker", "client")


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> None:
    """A whole TLS handshake between two contexts, in memory; raises what either side does."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=server_hostname)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def broker_context(files: TlsFiles, require_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.broker, files.broker_key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(files.ca)
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """What clients do with STREAMLEARN_KAFKA_SSL_CAFILE: trust that CA alone, check names."""
    context = ssl.create_default_context(cafile=str(files.ca))
    assert context.check_hostname
    return context


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_certificates(tmp_path_factory.mktemp("home") / "tls", "kafka.example")


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "::1", "kafka.example"])
def test_the_broker_certificate_verifies_for_its_names(files: TlsFiles, name: str) -> None:
    handshake(broker_context(files), client_context(files), name)


def test_another_name_or_another_ca_is_refused(files: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(broker_context(files), client_context(files), "elsewhere.example")
    other = ensure_certificates(tmp_path / "tls", "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(broker_context(files), client_context(other), "127.0.0.1")


def test_the_client_certificate_passes_mutual_tls(files: TlsFiles, tmp_path: Path) -> None:
    client = client_context(files)
    client.load_cert_chain(files.client, files.client_key)
    handshake(broker_context(files, require_client_cert=True), client, "localhost")

    stranger = client_context(files)
    other = ensure_certificates(tmp_path / "tls", "127.0.0.1")
    stranger.load_cert_chain(other.client, other.client_key)
    with pytest.raises(ssl.SSLError):
        handshake(broker_context(files, require_client_cert=True), stranger, "localhost")


def test_the_keystore_holds_the_key_and_the_chain(files: TlsFiles) -> None:
    # Kafka's PEM keystore: one file, an unencrypted PKCS#8 key, then the chain.
    keystore = files.keystore.read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")
    assert keystore.endswith(files.broker.read_text())
    assert keystore.count("BEGIN CERTIFICATE") == 2
    assert files.broker.read_text().endswith(files.ca.read_text())


def test_private_keys_are_readable_by_their_owner_only(files: TlsFiles) -> None:
    for name in KEYS:
        assert stat.S_IMODE(getattr(files, name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    for name in CERTS:
        assert stat.S_IMODE(getattr(files, name).stat().st_mode) == 0o644, name


def test_certificates_are_made_once_and_only_what_is_missing_is_made_again(
    tmp_path: Path,
) -> None:
    files = ensure_certificates(tmp_path / "tls", "127.0.0.1")
    first = snapshot(files)
    assert snapshot(ensure_certificates(tmp_path / "tls", "127.0.0.1")) == first

    files.broker.unlink()
    again = snapshot(ensure_certificates(tmp_path / "tls", "127.0.0.1"))
    changed = {name for name in first if first[name] != again[name]}
    assert changed == {"broker", "broker_key", "keystore"}

    # A host the certificate does not name yet: only the broker's is issued again.
    renamed = snapshot(ensure_certificates(tmp_path / "tls", "kafka.example"))
    assert {name for name in again if again[name] != renamed[name]} == changed
    handshake(broker_context(files), client_context(files), "kafka.example")

    # A new CA invalidates everything it did not sign.
    files.ca_key.unlink()
    fresh = snapshot(ensure_certificates(tmp_path / "tls", "kafka.example"))
    assert all(fresh[name] != renamed[name] for name in fresh)
    handshake(broker_context(files), client_context(files), "127.0.0.1")


def snapshot(files: TlsFiles) -> dict[str, bytes]:
    return {name: getattr(files, name).read_bytes() for name in KEYS + CERTS}
