"""Hostile messages on the real broker (issue 20): bytes that are not an event,
an event whose numbers do not fit the read model, garbage headers. Each is
dead-lettered, and the document published after it on the same partitions
goes through the extractor, the embedder and the status service."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.exc import DataError

from docflow_embedder.bootstrap import Ports as EmbedderPorts
from docflow_embedder.bootstrap import wire as wire_embedder
from docflow_embedder.domain import FixedIndex
from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.bootstrap import Ports as ExtractorPorts
from docflow_extractor.bootstrap import reading_for
from docflow_extractor.bootstrap import wire as wire_extractor
from docflow_extractor.settings import ExtractorSettings
from docflow_shared import retries, topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import DocumentProgressed, Event, Stage, Status
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.topics import specs
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.bootstrap import Ports as StatusPorts
from docflow_status.bootstrap import wire as wire_status
from docflow_status.settings import StatusSettings
from service.test_embedder_wiring import FakeEmbedder, MemoryVectors
from support.histories import successful
from support.uploads import an_upload, stored_upload
from support.waiting import await_until

pytestmark = pytest.mark.integration

DEEP = b"[" * 100_000


class Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


async def kept(bootstrap: str, key: bytes) -> list[tuple[bytes, dict[str, str]]]:
    """The dead letters of messages keyed ``key``: body and headers (the whole topic,
    to its end at the time of asking)."""
    consumer = AIOKafkaConsumer(
        topics.DEAD_LETTER, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assigned = await await_until(consumer.assignment, timeout_s=30, what="the partitions")
        ends = await consumer.end_offsets(list(assigned))
        found = []
        async with asyncio.timeout(60):
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        if record.key == key:
                            headers = {k: v.decode(errors="replace") for k, v in record.headers}
                            found.append((record.value, headers))
        return found
    finally:
        await consumer.stop()


async def test_poison_is_dead_lettered_and_the_next_document_still_goes_through(
    kafka_bootstrap: str, read_model: SqlReadModel, tmp_path: Path, corpus: Path
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    blobs = LocalBlobStore(tmp_path / "blobs")
    upload = stored_upload(
        blobs, sorted((corpus / "markdown").glob("*.md"))[0], "text/markdown", tenant_id="t1"
    )
    # Every poison is keyed like the document: they share its partitions.
    key = str(upload.document_id).encode()
    progressed = json.loads(
        DocumentProgressed.caused_by(upload, stage=Stage.EXTRACTING, done=1).model_dump_json()
    )
    progressed["done"] = 10**20  # valid JSON; more than any SQL integer column holds
    huge = json.dumps(progressed).encode()
    garbage_headers = [
        ("content-type", b"application/json"),
        (retries.RETRIES, b"lots"),
        (retries.DUE_MS, b"\xff\xfe"),
        ("ce_subject", b"\xc3\x28"),  # not UTF-8
    ]

    extractor = make_broker(kafka_bootstrap, service="extractor")
    settings = ExtractorSettings(data_dir=tmp_path, retry_delays_s=[0.3])
    wire_extractor(extractor, ExtractorPorts(blobs, reading_for(settings)), settings)
    embedder = make_broker(kafka_bootstrap, service="embedder")
    wire_embedder(
        embedder,
        EmbedderPorts(FixedIndex(FakeEmbedder(), MemoryVectors())),
        EmbedderSettings(retry_delays_s=[0.3]),
    )
    status = make_broker(kafka_bootstrap, service="status")
    wire_status(status, StatusPorts(read_model), StatusSettings(max_redeliveries=2))

    logs = Counting()
    logging.getLogger().addHandler(logs)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        async with AsyncExitStack() as stack:
            await producer.start()
            stack.push_async_callback(producer.stop)
            for broker in (extractor, embedder, status):
                await stack.enter_async_context(broker)
                await broker.start()
            await producer.send_and_wait(topics.UPLOADED, DEEP, key=key, headers=garbage_headers)
            await producer.send_and_wait(topics.EXTRACTED, DEEP, key=key)
            await producer.send_and_wait(topics.PROGRESSED, huge, key=key)
            await producer.send_and_wait(
                topics.UPLOADED, upload.model_dump_json().encode(), key=key
            )

            async def completed() -> bool:
                # Every topic of the document was read past its poison.
                state = await read_model.get(upload.document_id, "t1")
                return (
                    state is not None
                    and state.status is Status.COMPLETED
                    and state.filename is not None
                )

            await await_until(completed, timeout_s=120, what="the next document indexed")
    finally:
        logging.getLogger().removeHandler(logs)

    expected = {
        ("extractor", topics.UPLOADED, DEEP),
        ("embedder", topics.EXTRACTED, DEEP),
        ("status", topics.UPLOADED, DEEP),
        ("status", topics.EXTRACTED, DEEP),
        ("status", topics.PROGRESSED, huge),
    }

    async def every_poison_kept() -> list[tuple[bytes, dict[str, str]]] | None:
        letters = await kept(kafka_bootstrap, key)
        where = {
            (headers[retries.SERVICE], headers[retries.ORIGINAL_TOPIC], body)
            for body, headers in letters
        }
        return letters if expected <= where else None

    letters = await await_until(every_poison_kept, timeout_s=60, what="every poison kept")
    assert all(headers[retries.ERROR] for _, headers in letters)
    # A few lines per failure, not one per redelivery.
    assert logs.records < 500


class Refusing:
    """The read model, refusing every batch with one document's events in it, as
    PostgreSQL refuses a value out of range (an error that is not an outage)."""

    def __init__(self, read_model: SqlReadModel, poison: uuid.UUID) -> None:
        self._read_model = read_model
        self._poison = poison
        self.refused = 0

    async def apply_all(self, events: Sequence[Event], fold: Any) -> Any:
        if any(event.document_id == self._poison for event in events):
            self.refused += 1
            raise DataError("INSERT INTO documents …", {}, Exception("integer out of range"))
        return await self._read_model.apply_all(events, fold)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._read_model, name)


async def test_an_event_the_database_keeps_refusing_is_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, read_model: SqlReadModel
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    poison, good = an_upload(), successful(uuid.uuid4())
    key = str(poison.document_id).encode()  # the good document's events follow on its partitions
    refusing = Refusing(read_model, poison.document_id)
    status = make_broker(kafka_bootstrap, service="status")
    wire_status(status, StatusPorts(refusing), StatusSettings(max_redeliveries=2))  # type: ignore[arg-type]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    async with AsyncExitStack() as stack:
        await producer.start()
        stack.push_async_callback(producer.stop)
        await stack.enter_async_context(status)
        await status.start()
        for event in [poison, *good]:
            await producer.send_and_wait(event.TOPIC, event.model_dump_json().encode(), key=key)

        async def completed() -> bool:
            # Its upload (the filename) is behind the poison on the uploads' partition.
            state = await read_model.get(good[0].document_id, "t1")
            return (
                state is not None
                and state.status is Status.COMPLETED
                and state.filename is not None
            )

        await await_until(completed, timeout_s=120, what="the document behind the poison")
    assert await read_model.get(poison.document_id, "t1") is None
    [(body, headers)] = await kept(kafka_bootstrap, key)
    assert body == poison.model_dump_json().encode()
    assert headers[retries.SERVICE] == "status"
    assert headers[retries.ERROR].startswith("failed 3 times in a row: DataError")
    assert refusing.refused >= 3
