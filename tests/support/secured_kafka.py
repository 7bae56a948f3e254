"""The local Kafka broker (its Maven jars) with authentication and ACLs on.

Listeners, all on 127.0.0.1:

* ``SASL_SSL``: TLS with the test CA's certificate; SCRAM-SHA-512 users made
  at format time (``kafka-storage format --add-scram``) and SASL/PLAIN users
  from the listener's JAAS configuration, one per service
  (``docflow-<service>``, ``kafka_acls.GRANTS``), with the same passwords;
* ``SSL``: mutual TLS (``ssl.client.auth=required``); the certificate's
  CN is the principal (``ssl.principal.mapping.rules``), so a service is the
  same user whichever way it authenticates;
* ``PLAINTEXT``: the test's administrator (super user ``ANONYMOUS``) that
  creates the topics and applies the ACLs, as an operator would; also the
  broker's own and the controller's listener. Nothing of docflow's uses it.

``StandardAuthorizer`` (KRaft) enforces ``kafka_acls.GRANTS``, applied with
``kafka-acls`` (``org.apache.kafka.tools.AclCommand``).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_shared.kafka_acls import GRANTS, acl_commands
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.kafka_security import ENV, KafkaSecurity
from docflow_shared.topics import specs
from support.certificates import TestAuthority


@dataclass(frozen=True)
class SecuredKafka:
    """A running secured broker and the credentials of each service."""

    admin: str  # the PLAINTEXT listener, super user
    sasl_ssl: str
    ssl: str
    authority: TestAuthority
    passwords: dict[str, str]  # user -> password (SCRAM and PLAIN alike)

    def scram(self, user: str, password: str | None = None) -> KafkaSecurity:
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=user,
            sasl_password=password if password is not None else self.passwords[user],
            ssl_cafile=self.authority.cafile,
        )

    def plain(self, user: str) -> KafkaSecurity:
        return self.scram(user).model_copy(update={"sasl_mechanism": "PLAIN"})

    def mtls(self, user: str) -> KafkaSecurity:
        cert = self.authority.client(user)
        return KafkaSecurity(
            protocol="SSL",
            ssl_cafile=self.authority.cafile,
            ssl_certfile=cert.certfile,
            ssl_keyfile=cert.keyfile,
        )


def environment(bootstrap: str, security: KafkaSecurity) -> dict[str, str]:
    """The environment a service reads ``security`` from (``DOCFLOW_KAFKA_*``)."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    for field, name in ENV.items():
        value = getattr(security, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _jaas_plain(passwords: dict[str, str]) -> str:
    users = " ".join(f'user_{user}="{password}"' for user, password in passwords.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"


def _apply_acls(kafka: LocalKafka, bootstrap: str, home: Path) -> None:
    """Every ``kafka-acls`` invocation at once (each is a JVM start)."""
    running = []
    for n, args in enumerate(acl_commands()):
        log = (home / f"acls-{n}.log").open("w")
        command = kafka.tool("org.apache.kafka.tools.AclCommand", "--bootstrap-server", bootstrap)
        running.append((subprocess.Popen([*command, *args], stdout=log, stderr=log), log, n))
    for process, log, n in running:
        code = process.wait(timeout=180)
        log.close()
        if code != 0:
            raise RuntimeError(f"kafka-acls failed:\n{(home / f'acls-{n}.log').read_text()}")


@contextmanager
def secured_kafka(home: Path) -> Iterator[SecuredKafka]:
    """A secured broker in ``home`` with docflow's topics and ACLs, for the block."""
    authority = TestAuthority(home / "certs")
    keystore = authority.server_pem()
    passwords = {grants.user: secrets.token_urlsafe(16) for grants in GRANTS.values()}
    port, sasl_port, ssl_port = free_port(), free_port(), free_port()
    listeners = {"PLAINTEXT": port, "SASL_SSL": sasl_port, "SSL": ssl_port}
    addresses = ",".join(f"{name}://127.0.0.1:{p}" for name, p in listeners.items())
    controller_port = free_port()
    properties = {
        "listeners": f"{addresses},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": addresses,
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(authority.cafile),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "listener.name.sasl_ssl.plain.sasl.jaas.config": _jaas_plain(passwords),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
    }
    scram = [
        arg
        for user, password in passwords.items()
        for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]")
    ]
    kafka = LocalKafka(
        home=home / "broker",
        port=port,
        controller_port=controller_port,
        libs=ensure_jars(),
        extra_properties=properties,
        format_args=scram,
    )
    with kafka:
        asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
        _apply_acls(kafka, kafka.bootstrap_servers, home)
        yield SecuredKafka(
            admin=kafka.bootstrap_servers,
            sasl_ssl=f"127.0.0.1:{sasl_port}",
            ssl=f"127.0.0.1:{ssl_port}",
            authority=authority,
            passwords=passwords,
        )
