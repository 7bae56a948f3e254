"""docflow's delivery guarantees on a real Kafka broker (messaging.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from docflow_shared import topics
from docflow_shared.events import DocumentUploaded, parse_event
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import KafkaEventPublisher, make_broker, subscriber
from docflow_shared.topics import TopicSpec, specs
from support.uploads import an_upload
from support.waiting import await_until


async def fresh_topic(bootstrap: str) -> str:
    name = f"test.delivery.{uuid.uuid4().hex[:12]}"
    await ensure_topics(bootstrap, [TopicSpec(name, partitions=1)])
    return name


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return None if meta is None or meta.offset < 0 else meta.offset


async def test_events_are_keyed_by_document_with_cloudevents_headers(kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    broker = make_broker(kafka_bootstrap, service="test")
    publish = KafkaEventPublisher(broker, source="/docflow/test", produces=[DocumentUploaded])
    event = an_upload()
    async with broker:
        await broker.start()
        await publish(event)

    consumer = AIOKafkaConsumer(
        topics.UPLOADED,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                if record.key == str(event.document_id).encode():
                    break
    finally:
        await consumer.stop()
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["ce_id"] == str(event.event_id)
    assert headers["ce_type"] == "docflow.document.uploaded"
    assert headers["ce_source"] == "/docflow/test"
    assert headers["ce_specversion"] == "1.0"
    assert json.loads(record.value)["sha256"] == event.sha256
    assert parse_event(record.value) == event


async def test_the_offset_is_committed_only_after_the_handler_returns(kafka_bootstrap: str) -> None:
    topic = await fresh_topic(kafka_bootstrap)
    group = f"test-{uuid.uuid4()}"
    broker = make_broker(kafka_bootstrap, service="test")
    entered, release = asyncio.Event(), asyncio.Event()

    @subscriber(broker, topic, group_id=group)
    async def slow(body: bytes) -> None:
        entered.set()
        await release.wait()

    async with broker:
        await broker.start()
        await broker.publish(b"work", topic=topic)
        await asyncio.wait_for(entered.wait(), 30)
        # The handler is running: its effects are not done, nothing is committed.
        assert await committed(kafka_bootstrap, group, topic) is None
        release.set()

        async def done() -> bool:
            return await committed(kafka_bootstrap, group, topic) == 1

        await await_until(done, timeout_s=30, what="the commit after the handler")


async def test_a_failed_handler_gets_the_message_again(kafka_bootstrap: str) -> None:
    topic = await fresh_topic(kafka_bootstrap)
    group = f"test-{uuid.uuid4()}"
    broker = make_broker(kafka_bootstrap, service="test")
    attempts: list[bytes] = []

    @subscriber(broker, topic, group_id=group)
    async def flaky(body: bytes) -> None:
        attempts.append(body)
        if len(attempts) == 1:
            raise ConnectionError("vector store unavailable")

    async with broker:
        await broker.start()
        await broker.publish(b"work", topic=topic)

        async def processed() -> bool:
            return await committed(kafka_bootstrap, group, topic) == 1

        await await_until(processed, timeout_s=30, what="the redelivered message")
    assert attempts == [b"work", b"work"]


async def test_a_new_consumer_group_starts_at_the_earliest_offset(kafka_bootstrap: str) -> None:
    topic = await fresh_topic(kafka_bootstrap)
    publisher = make_broker(kafka_bootstrap, service="test")
    async with publisher:
        await publisher.start()
        await publisher.publish(b"sent before anyone listened", topic=topic)

    broker = make_broker(kafka_bootstrap, service="test")
    received: list[bytes] = []

    @subscriber(broker, topic, group_id=f"test-{uuid.uuid4()}")
    async def late(body: bytes) -> None:
        received.append(body)

    async with broker:
        await broker.start()

        async def got() -> list[bytes]:
            return received

        await await_until(got, timeout_s=30, what="the early message")
    assert received == [b"sent before anyone listened"]
