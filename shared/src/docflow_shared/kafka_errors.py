"""What an operator reads when a Kafka client cannot start.

aiokafka's clients fail to start with only ``KafkaConnectionError("Unable to
bootstrap from [...]")``; the reason (a password the broker refused, a
certificate that does not verify, a port nobody listens on) is in a log line
of aiokafka's just before it. ``explained`` wraps a client's start:
it collects those lines while the client starts and, if the start fails
that way, raises ``KafkaStartError`` with the reasons aiokafka gave and the
settings to check for them (never the password itself). Every docflow
client starts inside it: the brokers (``messaging.make_broker``) and the
clients of ``kafka_admin``, with which the dead-letter reads, the lag gauge
and the status rebuild's replay begin.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka.errors import KafkaConnectionError

from docflow_shared.kafka_security import ENV, PLAINTEXT, KafkaSecurity

# Where aiokafka logs why each bootstrap attempt failed (its client module's logger).
REASONS_LOGGER = "aiokafka"
_MAX_REASONS = 10


class KafkaStartError(KafkaConnectionError):  # type: ignore[misc]  # aiokafka is untyped
    """A Kafka client could not start: the message says why and what to check."""


class _Reasons(logging.Handler):
    """The messages aiokafka logs while a client starts (the first few)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < _MAX_REASONS:
            self.messages.append(record.getMessage())


@asynccontextmanager
async def explained(bootstrap: str, security: KafkaSecurity | None) -> AsyncIterator[None]:
    """Start a Kafka client inside this: a failure to bootstrap becomes a
    ``KafkaStartError`` that names its reason and the settings behind it."""
    reasons = _Reasons()
    source = logging.getLogger(REASONS_LOGGER)
    source.addHandler(reasons)
    try:
        yield
    except KafkaConnectionError as exc:
        if isinstance(exc, KafkaStartError) or "Unable to bootstrap" not in str(exc):
            raise
        message = explanation(bootstrap, security or PLAINTEXT, reasons.messages)
        raise KafkaStartError(message) from exc
    finally:
        source.removeHandler(reasons)


def explanation(bootstrap: str, security: KafkaSecurity, reasons: Sequence[str]) -> str:
    """Why a client could not bootstrap from ``bootstrap`` (``reasons``: what aiokafka
    logged) and which settings to check for it."""
    seen = "; ".join(dict.fromkeys(reasons)) or "no reason was logged"
    said = (
        f"cannot connect to Kafka at {bootstrap} ({ENV['protocol']}={security.protocol}): {seen}."
    )
    lowered = seen.lower()
    sasl = (
        f"{ENV['sasl_username']} (now {security.sasl_username!r}), {ENV['sasl_password']} "
        f"and {ENV['sasl_mechanism']} (now {security.sasl_mechanism}) against the broker's user"
    )
    if "authentication" in lowered or "sasl" in lowered:
        hint = f"The broker refused the credentials: check {sasl}."
    elif "certificate" in lowered or "ssl" in lowered:
        hint = (
            f"TLS failed: check {ENV['ssl_cafile']} (the brokers' CA), {ENV['ssl_certfile']} "
            f"and {ENV['ssl_keyfile']} (mutual TLS), {ENV['ssl_check_hostname']}, and that "
            "the listener at this address speaks TLS."
        )
    elif security.uses_sasl:
        hint = (
            f"If the brokers are up and this is their {security.protocol} listener, check {sasl}."
        )
    else:
        hint = (
            "Check KAFKA_BOOTSTRAP_SERVERS and that the brokers are up; a listener that "
            f"needs TLS or SASL needs {ENV['protocol']} (and its settings)."
        )
    return f"{said} {hint}"
