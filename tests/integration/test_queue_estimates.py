"""Queue positions, estimates and "waiting is not stalling" on a real Kafka broker
(issue 23): the status service's projector, its queue sampler and its API on a
real read model, with the two stages played by consumers in the stages' own
groups that read one record at a time at a known pace and report as the real
ones do (so the offsets, commits and rates are Kafka's own)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from docflow_shared import topics
from docflow_shared.blobstore import original_key
from docflow_shared.events import (
    Chunk,
    DocumentIndexed,
    DocumentProgressed,
    Event,
    OcrRangeRequested,
    Stage,
    Status,
    TextExtracted,
    parse_event,
)
from docflow_shared.kafka_admin import ensure_topics, group_positions, partitions_of
from docflow_shared.messaging import make_broker
from docflow_shared.sql import create_engine
from docflow_status.adapters.queues import SqlQueues
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.bootstrap import Ports, wire
from docflow_status.domain.queues import INPUTS
from docflow_status.domain.stages import QueueStage
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.entrypoints.queues import CachedQueues, QueueSampler
from docflow_status.handlers import Watchdog
from docflow_status.settings import StatusSettings
from support.uploads import an_upload
from support.waiting import await_until

Publish = Callable[[Event], Awaitable[None]]


@dataclass
class Status_:
    read_model: SqlReadModel
    sampler: QueueSampler
    watchdog: Watchdog
    api: httpx.AsyncClient
    publish: Publish


async def start_at_the_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group`` at the end of ``topic``: what earlier tests left there is not
    this test's queue."""
    partitions = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


@pytest.fixture
async def status(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Status_]:
    await ensure_topics(kafka_bootstrap, topics.specs())
    for topic, group in INPUTS.items():
        await start_at_the_end(kafka_bootstrap, group, topic)
    read_model = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"))
    await read_model.migrate()
    queues = SqlQueues(read_model.engine)
    settings = StatusSettings(stall_after_s=3, default_tenant="t1")
    broker = make_broker(kafka_bootstrap, service="status")
    watchdog = wire(broker, Ports(read_model, queues), settings, CollectorRegistry())
    sampler = QueueSampler(
        partial(group_positions, kafka_bootstrap), queues, window=timedelta(seconds=60)
    )
    app = create_app(
        StatusApi(
            settings=settings,
            documents=read_model,
            queues=CachedQueues(queues, ttl_s=0.1),
            checks={},
            registry=CollectorRegistry(),
        )
    )
    await broker.start()

    async def publish(event: Event) -> None:
        await broker.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://status"
        ) as api:
            yield Status_(read_model, sampler, watchdog, api, publish)
    finally:
        await broker.stop()
        await read_model.close()


async def stage(
    bootstrap: str,
    topic: str,
    pace_s: float,
    report: Callable[[Event], list[Event]],
    publish: Publish,
) -> None:
    """A stage: in its own group, one record at a time, ``pace_s`` each, reporting
    what ``report`` says, then committing."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=INPUTS[topic],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    await consumer.start()
    try:
        while True:
            record = await consumer.getone()
            await asyncio.sleep(pace_s)
            for event in report(parse_event(record.value)):
                await publish(event)
            await consumer.commit()
    finally:
        await consumer.stop()


def _envelope(event: Event) -> dict[str, object]:
    return {
        "document_id": event.document_id,
        "tenant_id": event.tenant_id,
        "correlation_id": event.correlation_id,
        "occurred_at": datetime.now(UTC),
    }


def extracted(event: Event) -> list[Event]:
    """What the extractor reports for a one-page document of one chunk."""
    chunk = Chunk(index=0, text="one chunk", page=1, char_start=0, char_end=9)
    return [
        DocumentProgressed(**_envelope(event), stage=Stage.EXTRACTING, done=1, total=1),
        TextExtracted(
            **_envelope(event), batch=0, chunks=[chunk], last=True, chunks_total=1, pages=1
        ),
    ]


def indexed(event: Event) -> list[Event]:
    return [
        DocumentIndexed(**_envelope(event), chunks_total=1, collection="c", embedding_model="m")
    ]


@contextlib.asynccontextmanager
async def running(*coroutines: Awaitable[None]) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def upload_batch(status: Status_, count: int) -> list[uuid.UUID]:
    uploads = [an_upload() for _ in range(count)]
    for upload in uploads:
        await status.publish(upload)

    async def projected() -> bool:
        return all([await status.read_model.get(u.document_id, "t1") for u in uploads])

    await await_until(projected, timeout_s=60, what="the uploads projected")
    return [u.document_id for u in uploads]


async def test_the_estimate_is_there_and_falls_as_a_batch_drains(
    kafka_bootstrap: str, status: Status_
) -> None:
    ids = await upload_batch(status, 24)
    await status.sampler.sample()
    # The last one sent waits for extraction behind others (on its partition and,
    # in turn, on the others).
    last = ids[-1]
    body = (await status.api.get(f"/v1/documents/{last}")).json()
    assert body["waiting_for"] == "extracting"
    assert body["queue_stage"] == "extracting"
    assert body["queue_position"] >= 1
    seen: list[tuple[float, int, float | None]] = []
    async with running(
        stage(kafka_bootstrap, topics.UPLOADED, 0.15, extracted, status.publish),
        stage(kafka_bootstrap, topics.EXTRACTED, 0.3, indexed, status.publish),
    ):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            await status.sampler.sample()
            body = (await status.api.get(f"/v1/documents/{last}")).json()
            if body["status"] == "completed":
                break
            eta = body["estimated_completion_at"]
            left = None if eta is None else (datetime.fromisoformat(eta) - datetime.now(UTC))
            seen.append((time.monotonic(), body["queue_position"], left and left.total_seconds()))
            await asyncio.sleep(0.5)
    assert body["status"] == "completed", f"not done in time; seen {seen}"
    done = await status.read_model.get(last, "t1")
    assert done is not None
    assert done.status is Status.COMPLETED
    estimates = [left for _, _, left in seen if left is not None]
    positions = [p for _, p, _ in seen if p is not None]
    assert len(estimates) >= 3, f"too few estimates: {seen}"
    # Falling as the batch drains: the remaining time and the position at the end
    # are well below where they were.
    assert estimates[-1] < estimates[0] - 2, seen
    assert positions[0] > positions[-1], seen
    # Once finished, no estimate.
    assert body["estimated_completion_at"] is None
    assert body["queue_position"] is None


async def test_waiting_behind_a_moving_queue_is_not_stalled_but_a_stopped_stage_is(
    kafka_bootstrap: str, status: Status_
) -> None:
    ids = await upload_batch(status, 12)
    await status.sampler.sample()
    # The extractor reads one a second; there is no embedder at all.
    async with running(stage(kafka_bootstrap, topics.UPLOADED, 1.0, extracted, status.publish)):

        async def some_cut() -> list[uuid.UUID]:
            states = [await status.read_model.get(d, "t1") for d in ids]
            return [s.id for s in states if s and s.waiting_for is QueueStage.EMBEDDING]

        await await_until(some_cut, timeout_s=30, what="documents cut")
        # Past the stall limit (3 s) for the documents still waiting for the extractor.
        await asyncio.sleep(4)
        await status.sampler.sample()
        stalls = {s.document_id for s in await status.watchdog.sweep()}
        states = {d: await status.read_model.get(d, "t1") for d in ids}
        waiting = {d for d, s in states.items() if s and s.waiting_for is QueueStage.EXTRACTING}
        assert waiting, "every document was read already: the test is too slow to tell"
        # Those waiting behind the moving extractor are not stalled...
        assert not waiting & stalls
        # ...those cut long enough ago, with no embedder reading, are.
        cut = {
            d
            for d, s in states.items()
            if s
            and s.waiting_for is QueueStage.EMBEDDING
            and s.updated_at is not None
            and s.updated_at < datetime.now(UTC) - timedelta(seconds=3)
        }
        assert cut
        assert cut <= stalls
    # The extractor stops with documents pending: past the limit, they are stalled.
    await status.sampler.sample()
    await asyncio.sleep(4)
    await status.sampler.sample()
    stalls = {s.document_id for s in await status.watchdog.sweep()}
    still = {
        d
        for d in ids
        if (s := await status.read_model.get(d, "t1")) is not None
        and s.waiting_for is QueueStage.EXTRACTING
    }
    assert still
    assert still <= stalls


async def ocr_stage(bootstrap: str, pace_s: float, publish: Publish) -> None:
    """The OCR consumer, in its own group: a range at a time, ``pace_s`` each,
    announcing its page; the extractor then cuts the document (one chunk)."""
    consumer = AIOKafkaConsumer(
        topics.OCR_REQUESTED,
        bootstrap_servers=bootstrap,
        group_id=INPUTS[topics.OCR_REQUESTED],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    await consumer.start()
    try:
        while True:
            request = OcrRangeRequested.model_validate_json((await consumer.getone()).value)
            await publish(
                DocumentProgressed(
                    **_envelope(request), stage=Stage.EXTRACTING, done=0, total=1, ocr_page=1
                )
            )
            await asyncio.sleep(pace_s)
            for event in extracted(request):
                await publish(event)
            await consumer.commit()
    finally:
        await consumer.stop()


async def test_a_scan_waits_for_ocr_in_the_ocr_queue_and_is_stalled_only_once_it_stops(
    kafka_bootstrap: str, status: Status_
) -> None:
    ids = await upload_batch(status, 12)
    for d in ids:
        # What the extractor sends for a one-page scan: pages 1..1 to the OCR stage.
        request = OcrRangeRequested(
            document_id=d,
            tenant_id="t1",
            correlation_id=str(d),
            content_type="application/pdf",
            blob_key=original_key("t1", d),
            first=1,
            last=1,
            page_count=1,
            range_index=0,
            range_count=1,
        )
        asked = DocumentProgressed(
            **_envelope(request), stage=Stage.EXTRACTING, done=0, total=1, ocr_from=1
        )
        await status.publish(asked)
        await status.publish(request)

    async def all_ranges_seen() -> bool:
        await status.sampler.sample()  # the view is empty until measured once
        view = await SqlQueues(status.read_model.engine).load_view()
        states = [await status.read_model.get(d, "t1") for d in ids]
        return set(view.ranges) >= set(ids) and all(
            s and s.waiting_for is QueueStage.OCR for s in states
        )

    await await_until(all_ranges_seen, timeout_s=60, what="the OCR requests projected")
    await status.sampler.sample()
    bodies = [(await status.api.get(f"/v1/documents/{d}")).json() for d in ids]
    assert {(b["waiting_for"], b["queue_stage"]) for b in bodies} == {("ocr", "ocr")}
    assert all(b["message"] == "Waiting for OCR: page 1" for b in bodies)
    # 12 scans on 6 partitions: some wait behind another's range.
    assert max(b["queue_position"] for b in bodies) >= 1
    etas: list[str] = []
    async with running(
        ocr_stage(kafka_bootstrap, 1.0, status.publish),
        stage(kafka_bootstrap, topics.EXTRACTED, 0.05, indexed, status.publish),
    ):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # past the stall limit (3 s)
            await status.sampler.sample()
            etas += [
                eta
                for d in ids
                if (
                    eta := (await status.api.get(f"/v1/documents/{d}")).json()[
                        "estimated_completion_at"
                    ]
                )
            ]
            await asyncio.sleep(0.5)
        stalls = {s.document_id for s in await status.watchdog.sweep()}
        states = {d: await status.read_model.get(d, "t1") for d in ids}
        waiting = {d for d, s in states.items() if s and s.waiting_for is QueueStage.OCR}
        assert waiting, "every scan was read already: the test is too slow to tell"
        assert len(waiting) < len(ids), "the OCR stage read nothing"
        # Waiting behind a moving OCR consumer is not stalling.
        assert not waiting & stalls
        assert etas, "no estimate while the OCR stage moved"
    # The OCR consumer stops with scans waiting: past the limit, they are stalled.
    await status.sampler.sample()
    await asyncio.sleep(4)
    await status.sampler.sample()
    stalls = {s.document_id for s in await status.watchdog.sweep()}
    still = {
        d
        for d in ids
        if (s := await status.read_model.get(d, "t1")) is not None
        and s.waiting_for is QueueStage.OCR
    }
    assert still
    assert still <= stalls

    async def says_so() -> bool:
        body = (await status.api.get(f"/v1/documents/{next(iter(still))}")).json()
        return bool(body["message"].endswith("(is the OCR consumer running?)"))

    await await_until(says_so, timeout_s=30, what="the stall projected")
