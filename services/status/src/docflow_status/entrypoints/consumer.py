"""The status service's subscriber: every document topic, and the re-embedding
operations' topics, into the read model; and the OCR ranges the extractor
requests, whose places on their topic tell how long a scan waits for OCR
(domain/queues.py; not folded into the read model)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol
from uuid import UUID

from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.batches import Item, Poison, dead_letter, handle_batch
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import (
    DocumentRetryRequested,
    DocumentUploaded,
    Event,
    OcrRangeRequested,
    ReindexEvent,
    TextExtracted,
    parse_any,
)
from docflow_shared.messaging import Publish, batch_subscriber
from docflow_shared.metrics import RejectedEvents
from docflow_shared.retries import Origin, Parking, is_transient
from docflow_shared.sql import unavailable
from docflow_shared.trust import check_claim
from docflow_status.domain.ownership import Rejected
from docflow_status.domain.projection import TERMINAL
from docflow_status.domain.queues import RangeSeen, Seen
from docflow_status.entrypoints.metrics import ProjectionMetrics
from docflow_status.handlers import ReadModel, project_events

logger = logging.getLogger(__name__)

GROUP_ID = "docflow-status"

# Events applied in one transaction at most. Larger batches project faster
# (bench/status_projection.py) but hold the event loop longer, which the
# status API's readers feel.
MAX_BATCH = 500


class QueueRecords(Protocol):
    """Where documents' records wait on the stages' input topics (adapters/queues.py)."""

    async def note_records(
        self,
        seen: Iterable[Seen],
        finished: Iterable[UUID] = (),
        ranges: Iterable[RangeSeen] = (),
    ) -> None: ...


Input = Event | ReindexEvent | OcrRangeRequested


def parse_input(data: bytes) -> Input:
    """A document or operation event, or an OCR range request."""
    try:
        return parse_any(data)
    except ValidationError as first:
        try:
            return OcrRangeRequested.model_validate_json(data)
        except ValidationError:
            raise first from None


# The event a stage works on, by its input topic (domain/queues.py).
_WORK = {
    topics.UPLOADED: DocumentUploaded,
    topics.RETRIED: DocumentRetryRequested,
    topics.EXTRACTED: TextExtracted,
}


def waiting_records(events: Sequence[Item[Event]], rejected: Sequence[Rejected]) -> list[Seen]:
    """Where the batch's work records are, of the events not rejected as forged."""
    forged = {(event.event_id, event.tenant_id) for event, _ in rejected}
    return [
        (
            item.event.document_id,
            item.origin.topic,
            item.origin.partition,
            item.origin.offset,
            item.event.attempt,
        )
        for item in events
        if item.origin is not None
        and isinstance(item.event, _WORK.get(item.origin.topic, ()))
        and (item.event.event_id, item.event.tenant_id) not in forged
    ]


def ocr_ranges(items: Sequence[Item[OcrRangeRequested]]) -> list[RangeSeen]:
    """Where the batch's OCR range requests are."""
    return [
        (
            item.event.document_id,
            item.event.range_index,
            item.origin.partition,
            item.origin.offset,
            item.event.attempt,
        )
        for item in items
        if item.origin is not None
    ]


Reject = Callable[[bytes, Origin | None, UntrustedEvent], Awaitable[None]]


def rejecter(parking: Parking | None, rejected: RejectedEvents | None) -> Reject:
    """What is done with an untrusted event: dead-lettered with why, counted, applied
    to nothing."""

    async def reject(body: bytes, origin: Origin | None, exc: UntrustedEvent) -> None:
        # Forged (docs/architecture.md, "Trust boundaries"): kept for whoever
        # investigates, counted, and applied to nothing.
        logger.error("rejected an untrusted event: %s", exc.message)
        if rejected is not None:
            rejected.count(exc.reason)
        if parking is not None:
            await parking.dead_letter(body, origin, f"untrusted event: {exc.message}", "status")

    return reject


def register(
    broker: KafkaBroker,
    *,
    read_model: ReadModel,
    announce: Publish,
    metrics: ProjectionMetrics | None = None,
    parking: Parking | None = None,
    rejected: RejectedEvents | None = None,
    queues: QueueRecords | None = None,
) -> None:
    """Subscribe the projector to every ``docflow.document.*`` and ``docflow.reindex.*``
    topic."""

    unreadable = dead_letter(parking, "status")

    reject = rejecter(parking, rejected)

    async def project(items: list[Item[Input]]) -> None:
        events: list[Item[Event]] = []
        reindexes: list[ReindexEvent] = []
        requests: list[Item[OcrRangeRequested]] = []
        for item in items:
            if isinstance(item.event, OcrRangeRequested):
                try:
                    check_claim(item.event)
                except UntrustedEvent as exc:
                    await reject(item.body, item.origin, exc)
                    continue
                requests.append(Item(item.body, item.event, item.origin))
            elif isinstance(item.event, Event):
                events.append(Item(item.body, item.event, item.origin))
            else:
                reindexes.append(item.event)
        # A database or Kafka error propagates: nothing of the batch is
        # committed and it comes back (poison: unless it is one event's own).
        projected = await project_events(
            [item.event for item in events],
            read_model=read_model,
            announce=announce,
            finished=metrics.observe_finished if metrics is not None else None,
        )
        # The message as it came when the event is this batch's; else (parked
        # earlier, rejected now that its upload was read) the event as stored.
        came = {(item.event.event_id, item.event.tenant_id): item for item in events}
        for event, why in projected.rejected:
            their = came.get((event.event_id, event.tenant_id))
            if their is None:
                await reject(event.model_dump_json().encode(), None, why)
            else:
                await reject(their.body, their.origin, why)
        await read_model.apply_reindexes(reindexes)
        if queues is not None:
            await queues.note_records(
                waiting_records(events, projected.rejected),
                [
                    document_id
                    for document_id, (_, state) in projected.documents.items()
                    if state.status in TERMINAL or state.deleted_at is not None
                ],
                ocr_ranges(requests),
            )

    poison: Poison[Input] | None = None
    if parking is not None:
        keep = parking

        async def dead_letter_poison(item: Item[Input], exc: Exception) -> None:
            limit = keep.redeliveries.limit
            reason = f"failed {limit + 1} times in a row: {type(exc).__name__}: {exc}"
            await keep.dead_letter(item.body, item.origin, reason[:500], "status")

        # A database outage is waited out (the batch comes back until it ends);
        # any other error of one event (a value the database refuses) must not
        # hold its partition forever: after DOCFLOW_MAX_REDELIVERIES it is
        # dead-lettered and the others go on.
        poison = Poison(
            parking.redeliveries,
            dead_letter_poison,
            outage=lambda exc: is_transient(exc) or unavailable(exc),
        )

    @batch_subscriber(
        broker,
        *topics.ALL,
        *topics.REINDEX,
        topics.OCR_REQUESTED,
        group_id=GROUP_ID,
        max_records=MAX_BATCH,
    )
    async def on_document_events(message: KafkaMessage) -> None:
        """Project what one poll returned into the read model, then announce it."""
        # Redelivering a message that can never be read would block the
        # partition; it goes to the dead-letter topic (or is skipped), loudly.
        await handle_batch(message, parse_input, project, on_invalid=unreadable, poison=poison)
