"""The gateway's dead-letter index on a real broker: the indexer reads each dead
letter once, requests page through the index and never read the topic (they
answer the same once the topic's records are deleted), and a restarted
gateway goes on from the positions kept in its database.

The index itself (paging, filters, any bytes): tests/unit/gateway/test_deadletter_index.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from fastapi.testclient import TestClient

from docflow_gateway.bootstrap import bootstrap
from docflow_gateway.settings import GatewaySettings
from docflow_shared import retries, topics
from docflow_shared.auth import hash_key
from docflow_shared.kafka_admin import ensure_topics, partitions_of
from docflow_shared.topics import specs

pytestmark = pytest.mark.integration


def tenant() -> str:
    return f"t{uuid4().hex[:12]}"


async def produce(bootstrap_servers: str, bodies: list[bytes], error: str) -> list[tuple[int, int]]:
    """Dead letters as the services keep them; their (partition, offset)s, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        where = []
        for n, body in enumerate(bodies):
            sent = await producer.send_and_wait(
                topics.DEAD_LETTER,
                body,
                key=str(uuid4()).encode(),  # spread over the partitions
                headers=[
                    (retries.ORIGINAL_TOPIC, topics.EXTRACTED.encode()),
                    (retries.SERVICE, b"embedder"),
                    (retries.STAGE, b"embedding"),
                    (retries.ERROR, f"{error} {n}".encode()),
                    (retries.RETRIES, b"3"),
                ],
            )
            where.append((sent.partition, sent.offset))
        return where
    finally:
        await producer.stop()


def bodies(tenant_id: str, count: int) -> list[bytes]:
    return [
        json.dumps({"document_id": str(uuid4()), "tenant_id": tenant_id}).encode()
        for _ in range(count)
    ]


async def delete_the_topics_records(bootstrap_servers: str) -> None:
    """Empty the dead-letter topic (DeleteRecords up to its end): what a request
    still finds can only come from the index."""
    from aiokafka import AIOKafkaConsumer

    partitions = await partitions_of(bootstrap_servers, [topics.DEAD_LETTER])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items()})
    finally:
        await admin.close()


def indexed(client: TestClient) -> int:
    text = client.get("/metrics").text
    return sum(
        int(float(n))
        for n in re.findall(r'^docflow_dead_letters_indexed_total\{body="\w+"\} (\S+)$', text, re.M)
    )


def page_through(client: TestClient, key: str, limit: int) -> list[tuple[int, int, str]]:
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/deadletters", params=params, headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert len(answer["dead_letters"]) <= limit
        seen += [(d["partition"], d["offset"], d["error"]) for d in answer["dead_letters"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            return seen


@pytest.fixture
def gateway_for(tmp_path: Path, kafka_bootstrap: str) -> Iterator:
    asyncio.run(ensure_topics(kafka_bootstrap, specs()))
    keys: dict[str, list[str]] = {}

    def make(*tenants: str) -> TestClient:
        for name in tenants:
            keys[name] = [hash_key(f"{name}-key")]
        settings = GatewaySettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            data_dir=tmp_path,
            auth_enabled=True,
            api_keys=keys,
            deadletter_index_wait_s=20,
        )
        return TestClient(bootstrap(settings))

    return make


def test_a_tenant_pages_through_many_dead_letters_from_the_index_not_the_topic(
    gateway_for, kafka_bootstrap: str
) -> None:
    acme, globex = tenant(), tenant()
    mine = asyncio.run(produce(kafka_bootstrap, bodies(acme, 260), "Qdrant refused"))
    asyncio.run(produce(kafka_bootstrap, bodies(globex, 40), "not yours"))
    # Unreadable bodies: indexed as naming no one, counted, never listed.
    unreadable = [b"", b"[" * 50_000, b"\xff\xfe", b'{"document_id": 1, "tenant_id": "x y"}']
    asyncio.run(produce(kafka_bootstrap, unreadable * 5, "garbage"))

    with gateway_for(acme, globex) as client:
        seen = page_through(client, f"{acme}-key", 45)
        # Each once, in the order the index took them (each partition's in offset order).
        assert sorted((p, o) for p, o, _ in seen) == sorted(mine)
        assert len(set(seen)) == len(seen) == 260
        for partition in {p for p, _ in mine}:
            offsets = [o for p, o, _ in seen if p == partition]
            assert offsets == sorted(offsets)
        assert {e.rsplit(" ", 1)[0] for _, _, e in seen} == {"Qdrant refused"}
        assert len(page_through(client, f"{globex}-key", 500)) == 40
        metrics = client.get("/metrics").text
        unnamed = re.search(
            r'^docflow_dead_letters_indexed_total\{body="unnamed"\} (\S+)$', metrics, re.M
        )
        assert unnamed is not None
        assert float(unnamed.group(1)) >= 20

        # Requests read nothing more from the topic: every record was read once.
        read = indexed(client)
        for _ in range(5):
            page_through(client, f"{acme}-key", 100)
        dry = client.post(
            "/v1/deadletters/redrive", json={"dry_run": True}, headers={"X-API-Key": f"{acme}-key"}
        )
        assert dry.status_code == 200
        assert dry.json()["dead_letters"] == 260
        assert indexed(client) == read

        # With the topic's records gone, the answer is the same: it is the index's.
        asyncio.run(delete_the_topics_records(kafka_bootstrap))
        assert sorted(page_through(client, f"{acme}-key", 45)) == sorted(seen)
        # And what comes after is indexed as it arrives.
        late = asyncio.run(produce(kafka_bootstrap, bodies(acme, 3), "late"))
        after = page_through(client, f"{acme}-key", 45)
        assert sorted((p, o) for p, o, _ in after[-3:]) == sorted(late)
        assert indexed(client) == read + 3


def test_a_restarted_gateway_goes_on_from_the_positions_in_its_database(
    gateway_for, kafka_bootstrap: str
) -> None:
    acme = tenant()
    asyncio.run(produce(kafka_bootstrap, bodies(acme, 30), "before"))
    with gateway_for(acme) as client:
        assert len(page_through(client, f"{acme}-key", 500)) == 30
    new = asyncio.run(produce(kafka_bootstrap, bodies(acme, 7), "while stopped"))
    with gateway_for(acme) as client:
        seen = page_through(client, f"{acme}-key", 500)
        assert len(seen) == 37
        assert sorted((p, o) for p, o, _ in seen[-7:]) == sorted(new)
        # Only what was new was read: not the topic again.
        assert indexed(client) == 7


def test_a_fresh_index_of_a_topic_whose_records_were_deleted_answers_at_once(
    gateway_for, kafka_bootstrap: str
) -> None:
    acme = tenant()
    asyncio.run(produce(kafka_bootstrap, bodies(acme, 5), "gone"))
    asyncio.run(delete_the_topics_records(kafka_bootstrap))
    with gateway_for(acme) as client:
        started = time.monotonic()
        assert page_through(client, f"{acme}-key", 10) == []
        # Not the wait for offsets that no longer exist (deadletter_index_wait_s=20).
        assert time.monotonic() - started < 10
        assert indexed(client) == 0
