"""What the local broker listens on, and how whoever connects must prove who they are.

Both modes listen for clients on ``host:port`` and run the KRaft controller on
``host:port + 1``. A plaintext broker trusts everyone on both. A secure broker:

* serves clients on a ``SASL_SSL`` listener that offers SCRAM-SHA-512 alone, so a client
  with another mechanism is told "unsupported mechanism" at once rather than left to time
  out. Client certificates are *requested*: a client may present one (it must then be
  signed by the broker's CA), but SASL decides who it is.
* runs the controller listener as ``SASL_SSL`` with PLAIN and one static user. SCRAM is
  impossible there (a controller would have to read the credentials from the very log it
  serves), and TLS keeps that password off the wire.
* turns Kafka's ``StandardAuthorizer`` on; nothing is allowed without an ACL but to the
  super users, ``admin`` (the broker's own inter-broker login) and ``controller``.
"""

from __future__ import annotations

from streams.broker.credentials import ADMIN, CONTROLLER_USER, MECHANISM, Credentials
from streams.broker.tls import TlsFiles

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def plaintext_listeners(host: str, port: int) -> list[str]:
    """``server.properties`` lines of a broker anyone on the network may use."""
    controller = port + 1
    return [
        f"controller.quorum.voters=1@{host}:{controller}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    ]


def secure_listeners(host: str, port: int, credentials: Credentials, tls: TlsFiles) -> list[str]:
    """``server.properties`` lines of a broker that authenticates, encrypts and authorizes.

    The lines hold passwords: the file they go to must be private.
    """
    controller = port + 1
    # Generated passwords are URL-safe, so they need no escaping inside JAAS quotes.
    admin_login = f'{_SCRAM_LOGIN} required username="{ADMIN}" password="{credentials.admin}";'
    controller_login = (
        f'{_PLAIN_LOGIN} required username="{CONTROLLER_USER}"'
        f' password="{credentials.controller}" user_{CONTROLLER_USER}="{credentials.controller}";'
    )
    mechanism = MECHANISM.lower()
    return [
        f"controller.quorum.voters=1@{host}:{controller}",
        f"listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller}",
        f"advertised.listeners=SASL_SSL://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config={admin_login}",
        "listener.name.sasl_ssl.ssl.client.auth=requested",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={controller_login}",
        "listener.name.controller.ssl.client.auth=none",
        # Kafka reads PEM directly: the key (unencrypted PKCS#8) and chain in one file.
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls.ca}",
        "ssl.endpoint.identification.algorithm=https",
        f"authorizer.class.name={AUTHORIZER}",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN};User:{CONTROLLER_USER}",
    ]
