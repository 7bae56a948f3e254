"""A Kafka client that cannot start says why and which settings to check
(kafka_errors.py), where aiokafka says only "Unable to bootstrap". Here against
a port nobody listens on (real aiokafka clients, no broker); the wrong password
on a secured broker is in tests/integration/test_kafka_security.py."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from docflow_local.processes import free_port
from docflow_shared.kafka_admin import partitions_of
from docflow_shared.kafka_errors import KafkaStartError, explained, explanation
from docflow_shared.kafka_security import KafkaSecurity
from docflow_shared.messaging import make_broker

SCRAM = KafkaSecurity(
    protocol="SASL_PLAINTEXT",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="docflow-gateway",
    sasl_password=SecretStr("a-secret-password"),
)


async def test_a_closed_port_names_the_address_and_the_reason() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(KafkaStartError) as caught:
        await partitions_of(address, ["docflow.document.uploaded.v1"])
    message = str(caught.value)
    assert f"cannot connect to Kafka at {address}" in message
    assert "DOCFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in message
    # aiokafka's logged reason, carried over.
    assert f'Unable connect to "{address}": [Errno 111] Connect call failed' in message
    assert "Check KAFKA_BOOTSTRAP_SERVERS and that the brokers are up" in message


async def test_a_broker_with_sasl_points_at_the_credentials_never_showing_them() -> None:
    address = f"127.0.0.1:{free_port()}"
    broker = make_broker(address, service="gateway", security=SCRAM)
    with pytest.raises(KafkaStartError) as caught:
        await broker.start()
    await broker.stop()
    message = str(caught.value)
    assert "DOCFLOW_KAFKA_SASL_USERNAME (now 'docflow-gateway')" in message
    assert "DOCFLOW_KAFKA_SASL_PASSWORD" in message
    assert "DOCFLOW_KAFKA_SASL_MECHANISM (now SCRAM-SHA-512)" in message
    assert "a-secret-password" not in message


def test_each_reason_gets_its_own_hint() -> None:
    refused = explanation(
        "kafka:9093",
        SCRAM,
        ['Unable connect to "kafka:9093": SaslAuthenticationFailed: invalid credentials'],
    )
    assert "The broker refused the credentials" in refused
    assert "SaslAuthenticationFailed: invalid credentials" in refused
    tls = KafkaSecurity(protocol="SSL")
    untrusted = explanation(
        "kafka:9093", tls, ['Unable connect to "kafka:9093": [SSL: CERTIFICATE_VERIFY_FAILED]']
    )
    assert "TLS failed: check DOCFLOW_KAFKA_SSL_CAFILE" in untrusted
    assert "no reason was logged" in explanation("kafka:9092", KafkaSecurity(), [])


async def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(KafkaConnectionError) as caught:
        async with explained("kafka:9092", None):
            raise KafkaConnectionError("Connection at kafka:9092 closed")
    assert type(caught.value) is KafkaConnectionError
    with pytest.raises(ValueError, match="not Kafka's"):
        async with explained("kafka:9092", None):
            raise ValueError("not Kafka's")
