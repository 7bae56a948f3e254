"""docflow's Kafka clients on a broker with TLS, SASL and ACLs (support/secured_kafka.py).

One secured broker for the module (it stops when the module is done):
SCRAM-SHA-512 and SASL/PLAIN over TLS, mutual TLS, and ``kafka_acls.GRANTS``
enforced by the broker's authorizer.
Every client here is docflow's own code path (``make_broker``, the gateway's
publisher, ``kafka_admin``, ``deadletters``, the status rebuild's replay),
given the ``KafkaSecurity`` the settings would build; the last test runs the
four services as processes on it, each with its own principal and only its
own ACLs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from docflow_gateway.bootstrap import event_publisher
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared import topics
from docflow_shared.deadletters import dead_letters
from docflow_shared.events import DocumentUploaded
from docflow_shared.kafka_admin import consumers_lag, partitions_of, read_records
from docflow_shared.kafka_errors import KafkaStartError
from docflow_shared.kafka_security import KafkaSecurity
from docflow_shared.messaging import make_broker, subscriber
from docflow_status.adapters.replay import replay
from support.certificates import TestAuthority
from support.corpus import REPO_ROOT
from support.secured_kafka import SecuredKafka, environment, secured_kafka
from support.uploads import an_upload
from support.waiting import await_until, wait_until

GATEWAY, EXTRACTOR, STATUS = "docflow-gateway", "docflow-extractor", "docflow-status"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(tmp_path_factory.mktemp("secured-kafka")) as running:
        yield running


async def publish_upload(bootstrap: str, security: KafkaSecurity) -> DocumentUploaded:
    """An upload published as the gateway publishes it, with ``security``."""
    broker = make_broker(bootstrap, service="gateway", security=security)
    publish = event_publisher(broker)
    event = an_upload()
    async with broker:
        await broker.start()
        await publish(event)
    return event


async def test_scram_over_tls_round_trips_through_the_pipeline_code(kafka: SecuredKafka) -> None:
    event = await publish_upload(kafka.sasl_ssl, kafka.scram(GATEWAY))
    # The extractor's consumer group, with the extractor's principal.
    consumer = make_broker(kafka.sasl_ssl, service="extractor", security=kafka.scram(EXTRACTOR))
    seen: list[DocumentUploaded] = []

    @subscriber(consumer, topics.UPLOADED, group_id="docflow-extractor")
    async def on_uploaded(uploaded: DocumentUploaded) -> None:
        seen.append(uploaded)

    async with consumer:
        await consumer.start()
        await await_until(
            lambda: any(e.document_id == event.document_id for e in seen),
            timeout_s=60,
            what="the upload at the extractor",
        )

        # The status service's lag gauge, with the status principal: it reads
        # the committed offsets of the other services' groups.
        async def caught_up() -> bool:
            lag = await consumers_lag(kafka.sasl_ssl, security=kafka.scram(STATUS))
            return lag["docflow-extractor"] == 0

        await await_until(caught_up, timeout_s=60, what="the extractor's lag at 0")
    assert [e for e in seen if e.document_id == event.document_id] == [event]


async def test_sasl_plain_over_tls_reads_the_dead_letters(kafka: SecuredKafka) -> None:
    # The extractor gives a message up; the gateway lists it (GET /v1/deadletters).
    body = an_upload().model_dump_json().encode()
    producer = make_broker(kafka.sasl_ssl, service="extractor", security=kafka.plain(EXTRACTOR))
    async with producer:
        await producer.start()
        await producer.publish(body, topic=topics.DEAD_LETTER)
    letters = await dead_letters(kafka.sasl_ssl, security=kafka.plain(GATEWAY))
    assert body in [letter.body for letter in letters]


async def test_mutual_tls_authenticates_by_certificate(kafka: SecuredKafka) -> None:
    event = await publish_upload(kafka.ssl, kafka.mtls(GATEWAY))
    # The status service's rebuild replays the topics as the status principal.
    found: list[object] = []

    async def collect(events: list[object]) -> None:
        found.extend(events)

    done = await replay(kafka.ssl, [topics.UPLOADED], collect, security=kafka.mtls(STATUS))
    assert event in found
    assert done.events == len(found)


async def test_a_wrong_password_is_refused(
    kafka: SecuredKafka, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = kafka.scram(GATEWAY, password="not-the-password")
    # aiokafka raises only "Unable to bootstrap" and logs the broker's reason;
    # the error docflow raises carries that reason and what to check.
    reason = "SaslAuthenticationFailed: Authentication failed during authentication due to "
    check = (
        "The broker refused the credentials: check DOCFLOW_KAFKA_SASL_USERNAME "
        "(now 'docflow-gateway'), DOCFLOW_KAFKA_SASL_PASSWORD and "
        "DOCFLOW_KAFKA_SASL_MECHANISM (now SCRAM-SHA-512)"
    )
    with pytest.raises(KafkaStartError) as admin:
        await partitions_of(kafka.sasl_ssl, [topics.UPLOADED], security=wrong)
    assert reason + "invalid credentials with SASL mechanism SCRAM-SHA-512" in str(admin.value)
    assert check in str(admin.value)
    assert f"cannot connect to Kafka at {kafka.sasl_ssl}" in str(admin.value)
    assert "not-the-password" not in str(admin.value)
    assert isinstance(admin.value.__cause__, KafkaConnectionError)  # aiokafka's own
    caplog.clear()
    broker = make_broker(kafka.sasl_ssl, service="gateway", security=wrong)
    with pytest.raises(KafkaStartError) as started:
        await broker.start()
    await broker.stop()
    assert reason in str(started.value)
    assert check in str(started.value)


async def test_a_certificate_from_another_authority_is_refused(
    kafka: SecuredKafka, tmp_path: Path
) -> None:
    stranger = TestAuthority(tmp_path).client(GATEWAY)
    security = kafka.mtls(GATEWAY).model_copy(
        update={"ssl_certfile": stranger.certfile, "ssl_keyfile": stranger.keyfile}
    )
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(
            partitions_of(kafka.ssl, [topics.UPLOADED], security=security), timeout=60
        )


async def test_only_the_gateway_may_produce_commands(kafka: SecuredKafka) -> None:
    cancel = uuid.uuid4().bytes
    # Keyed as the gateway keys them: the command topics are compacted, and a
    # compacted topic refuses a record without a key.
    key = b"acme/" + str(uuid.UUID(bytes=cancel)).encode()
    extractor = make_broker(kafka.sasl_ssl, service="extractor", security=kafka.scram(EXTRACTOR))
    async with extractor:
        await extractor.start()
        for command in (topics.CANCELLED, topics.DELETED, topics.RETRIED):
            with pytest.raises(TopicAuthorizationFailedError):
                await extractor.publish(cancel, topic=command, key=key)
    # ... nor read what is not its own (the dead letters are the gateway's to
    # list). One letter there first: a read of an empty topic fetches nothing,
    # and so is refused nothing, whatever the ACLs.
    administrator = make_broker(kafka.admin, service="test")
    async with administrator:
        await administrator.start()
        await administrator.publish(b"a dead letter", topic=topics.DEAD_LETTER, key=key)
    with pytest.raises(TopicAuthorizationFailedError):
        await read_records(kafka.sasl_ssl, topics.DEAD_LETTER, security=kafka.scram(EXTRACTOR))
    gateway = make_broker(kafka.sasl_ssl, service="gateway", security=kafka.scram(GATEWAY))
    async with gateway:
        await gateway.start()
        await gateway.publish(cancel, topic=topics.CANCELLED, key=key)
    cancelled = await read_records(kafka.admin, topics.CANCELLED)
    assert [(r.key, r.value) for r in cancelled] == [(key, cancel)]


@pytest.fixture(scope="module")
def stack(kafka: SecuredKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The four services on the secured broker: the gateway, the embedder and the
    status service with SCRAM-SHA-512 over TLS, the extractor (and its OCR
    consumer) with its client certificate (mutual TLS)."""
    env = {
        "gateway": environment(kafka.sasl_ssl, kafka.scram("docflow-gateway")),
        "status": environment(kafka.sasl_ssl, kafka.scram("docflow-status"))
        | {"DOCFLOW_WATCHDOG_EVERY_S": "1"},
        "extractor": environment(kafka.ssl, kafka.mtls("docflow-extractor")),
        # The extractor's OCR consumer connects as the extractor's user.
        "ocr": environment(kafka.ssl, kafka.mtls("docflow-extractor")),
        "embedder": environment(kafka.sasl_ssl, kafka.scram("docflow-embedder")),
        # The gateway's webhook dispatcher connects as the gateway's user.
        "webhooks": environment(kafka.sasl_ssl, kafka.scram("docflow-gateway")),
    }
    chosen = [
        dataclasses.replace(service, env=tuple(env[service.name].items()))
        for service in services(free_port(), free_port(), free_port(), free_port())
    ]
    running = Stack(
        # Each service's own listener is in its environment (above).
        kafka_bootstrap_servers=kafka.sasl_ssl,
        data_dir=tmp_path_factory.mktemp("secured-stack") / "data",
        services=chosen,
        log_dir=REPO_ROOT / ".artifacts" / "e2e" / "logs" / "secured-kafka",
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


def test_a_document_completes_with_every_service_on_its_own_principal(
    stack: Stack, http: httpx.Client
) -> None:
    text = b"Glaciers retreat when summers melt more ice than winters bring.\n" * 20
    response = http.post(
        f"{stack.url('gateway')}/v1/documents", files={"file": ("glaciers.txt", text)}
    )
    assert response.status_code == 202, response.text
    document = response.json()["documents"][0]

    def finished() -> dict[str, object] | None:
        answer = http.get(document["status_url"])
        status: dict[str, object] = answer.json() if answer.status_code == 200 else {}
        return status if status.get("status") in ("completed", "failed") else None

    final = wait_until(finished, timeout_s=180, interval_s=0.5, what="the document finished")
    assert final["status"] == "completed", final

    # The lag gauge, computed by the status service with its principal.
    def lag_reported() -> str | None:
        metrics = http.get(f"{stack.url('status')}/metrics").text
        line = 'docflow_consumer_lag_messages{group="docflow-embedder"}'
        return next((row for row in metrics.splitlines() if row.startswith(line)), None)

    row = wait_until(lag_reported, timeout_s=60, interval_s=0.5, what="the lag gauge")
    assert float(row.split()[-1]) >= 0
