"""Topic configuration on the real broker: what replay and the status topic rely on."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import (
    CANCELLED,
    DELETED,
    EVENTS_CONFIG,
    STATUS_CONFIG,
    STOPS_CONFIG,
    TopicSpec,
    specs,
)

pytestmark = pytest.mark.integration


async def configs(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}


async def test_event_topics_keep_everything_and_the_status_topic_is_compacted(
    kafka_bootstrap: str,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    events, status = f"test.events.{suffix}", f"test.status.{suffix}"
    await ensure_topics(
        kafka_bootstrap,
        [
            TopicSpec(events, 1, 1, dict(EVENTS_CONFIG)),
            TopicSpec(status, 1, 1, dict(STATUS_CONFIG)),
        ],
    )
    found = await configs(kafka_bootstrap, events)
    assert (found["cleanup.policy"], found["retention.ms"], found["retention.bytes"]) == (
        "delete",
        "-1",
        "-1",
    )
    assert (await configs(kafka_bootstrap, status))["cleanup.policy"] == "compact"


async def test_a_topic_made_by_an_older_version_gets_todays_configuration(
    kafka_bootstrap: str,
) -> None:
    name = f"test.old.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 1, 1)])
    # (The local broker keeps time forever already; its size limit is 1 GiB.)
    assert (await configs(kafka_bootstrap, name))["retention.bytes"] != "-1"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 1, 1, dict(EVENTS_CONFIG))])
    assert (await configs(kafka_bootstrap, name))["retention.bytes"] == "-1"


async def test_cancellations_and_deletions_become_compacted_on_upgrade(
    kafka_bootstrap: str,
) -> None:
    # Made by an older version: kept forever, never compacted.
    names = [f"test.{kind}.{uuid.uuid4().hex[:8]}" for kind in ("cancelled", "deleted")]
    await ensure_topics(kafka_bootstrap, [TopicSpec(n, 1, 1, dict(EVENTS_CONFIG)) for n in names])
    assert {(await configs(kafka_bootstrap, n))["cleanup.policy"] for n in names} == {"delete"}
    # What this version declares for them (topics.specs()), applied by the same call.
    declared = {spec.name: spec.config for spec in specs()}
    assert declared[CANCELLED] == declared[DELETED] == STOPS_CONFIG
    await ensure_topics(kafka_bootstrap, [TopicSpec(n, 1, 1, dict(STOPS_CONFIG)) for n in names])
    for name in names:
        found = await configs(kafka_bootstrap, name)
        assert found["cleanup.policy"] == "compact"
        assert found["min.compaction.lag.ms"] == STOPS_CONFIG["min.compaction.lag.ms"]


async def test_a_scans_ocr_ranges_are_written_round_robin_over_the_partitions(
    kafka_bootstrap: str,
) -> None:
    """Through the extractor's publisher, on the real broker: the partition count is
    asked of Kafka, and each range lands where ``kafka_partition`` says."""
    from faststream.kafka import KafkaBroker

    from docflow_shared import topics
    from docflow_shared.blobstore import original_key
    from docflow_shared.events import OcrRangeRequested
    from docflow_shared.kafka_admin import PartitionCounts, read_records
    from docflow_shared.messaging import KafkaEventPublisher

    await ensure_topics(kafka_bootstrap, specs())
    broker = KafkaBroker(kafka_bootstrap)
    publish = KafkaEventPublisher(
        broker,
        source="/test",
        produces=[OcrRangeRequested],
        partition_counts=PartitionCounts(kafka_bootstrap),
    )
    d = uuid.uuid4()
    await broker.start()
    try:
        for index in range(8):
            await publish(
                OcrRangeRequested(
                    document_id=d,
                    tenant_id="t1",
                    correlation_id="c",
                    content_type="application/pdf",
                    blob_key=original_key("t1", d),
                    first=index + 1,
                    last=index + 1,
                    page_count=8,
                    range_index=index,
                    range_count=8,
                )
            )
    finally:
        await broker.stop()
    landed = {
        OcrRangeRequested.model_validate_json(r.value).range_index: r.partition
        for r in await read_records(kafka_bootstrap, topics.OCR_REQUESTED)
        if r.key.startswith(f"{d}:".encode())
    }
    assert landed == {i: (d.int + i) % 6 for i in range(8)}
