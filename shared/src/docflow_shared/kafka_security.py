"""How every docflow Kafka client connects: plaintext, TLS, mutual TLS, SASL.

``KafkaSecurity`` is checked once, when the settings are read
(``settings.KafkaClientSettings``): a combination that cannot work (SASL
without a password, a client certificate on a plaintext connection, a
certificate file that is not there) is an error at start, never a silent
fallback to plaintext. Then it is turned into what the clients take, from
one place:

* ``faststream_security()``: the ``security=`` object of FastStream's
  ``KafkaBroker`` (every service's producers and consumers, ``make_broker``);
* ``aiokafka_kwargs()``: the keyword arguments of aiokafka's
  ``AIOKafkaAdminClient``, ``AIOKafkaConsumer`` and ``AIOKafkaProducer``
  (topic creation, lag queries, dead-letter reads, the status rebuild). They
  are FastStream's own translation of the object above, so the two cannot
  disagree.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SASL_CLASSES: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}

# The environment variable behind each field, for error messages.
ENV = {
    "protocol": "DOCFLOW_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "DOCFLOW_KAFKA_SASL_MECHANISM",
    "sasl_username": "DOCFLOW_KAFKA_SASL_USERNAME",
    "sasl_password": "DOCFLOW_KAFKA_SASL_PASSWORD",
    "ssl_cafile": "DOCFLOW_KAFKA_SSL_CAFILE",
    "ssl_certfile": "DOCFLOW_KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "DOCFLOW_KAFKA_SSL_KEYFILE",
    "ssl_check_hostname": "DOCFLOW_KAFKA_SSL_CHECK_HOSTNAME",
}


class KafkaSecurity(BaseModel):
    """A Kafka connection's security, valid by construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # PEM files. No CA file: the system's trusted CAs (what MSK and Confluent
    # Cloud present). A certificate (and its key) is mutual TLS.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        protocol = f"{ENV['protocol']}={self.protocol}"
        sasl = {"sasl_mechanism", "sasl_username", "sasl_password"}
        tls = {"ssl_cafile", "ssl_certfile", "ssl_keyfile"}
        if self.uses_sasl:
            missing = [ENV[name] for name in sorted(sasl) if getattr(self, name) in (None, "")]
            if self.sasl_password is not None and not self.sasl_password.get_secret_value():
                missing.append(ENV["sasl_password"])
            if missing:
                raise ValueError(f"{protocol} needs {', '.join(sorted(set(missing)))}")
        else:
            given = [ENV[name] for name in sorted(sasl) if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} given but {protocol} does not use SASL: "
                    "choose SASL_SSL (or SASL_PLAINTEXT), or leave them unset"
                )
        if not self.uses_tls:
            given = [ENV[name] for name in sorted(tls) if getattr(self, name) is not None]
            if not self.ssl_check_hostname:
                given.append(ENV["ssl_check_hostname"])
            if given:
                raise ValueError(
                    f"{', '.join(given)} given but {protocol} does not use TLS: "
                    "choose SSL or SASL_SSL, or leave them unset"
                )
            return self
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError(f"{ENV['ssl_keyfile']} given without {ENV['ssl_certfile']}")
        for name in sorted(tls):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{ENV[name]}={path}: no such file")
        # Read the files now: a certificate that does not load fails the start.
        self.ssl_context()
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None without TLS): verifies the brokers' certificates
        against the CA file or the system's CAs, and presents the client
        certificate when one is given."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH,
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
            )
            if self.ssl_certfile is not None:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    str(self.ssl_keyfile) if self.ssl_keyfile else None,
                )
        except (ssl.SSLError, OSError) as exc:
            files = ", ".join(
                f"{ENV[n]}={getattr(self, n)}"
                for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
                if getattr(self, n) is not None
            )
            raise ValueError(f"cannot load the Kafka TLS files ({files}): {exc}") from exc
        # The certificate is still verified; only its name is not matched.
        context.check_hostname = self.ssl_check_hostname
        return context

    def faststream_security(self) -> BaseSecurity | None:
        """FastStream's ``security=`` for ``KafkaBroker`` (None: plaintext)."""
        context = self.ssl_context()
        if self.uses_sasl:
            # Checked at construction (``_consistent``).
            assert self.sasl_mechanism is not None
            assert self.sasl_username is not None
            assert self.sasl_password is not None
            return _SASL_CLASSES[self.sasl_mechanism](
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                ssl_context=context,
                use_ssl=self.uses_tls,
            )
        if self.uses_tls:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        return None

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's clients ({} for plaintext)."""
        return parse_security(self.faststream_security())


PLAINTEXT = KafkaSecurity()
"""No TLS, no SASL: the embedded default (``make run``, most tests)."""


def client_kwargs(security: KafkaSecurity | None) -> dict[str, Any]:
    """aiokafka keyword arguments for ``security`` (None is plaintext)."""
    return (security or PLAINTEXT).aiokafka_kwargs()
