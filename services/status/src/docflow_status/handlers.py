"""The status service's use cases: project events, announce snapshots, find stalls.

The read model is just another event handler. It deduplicates because
delivery is at-least-once: the repository records each applied ``event_id``
in the same transaction as the change, so a redelivered event changes
nothing, and the fold (``domain.projection.evolve``) never moves a document
backwards when events from different topics arrive out of order.

After each batch is committed, the latest status of every document it was
about goes to the compacted status topic (``DocumentStatusChanged``), also
for documents whose events were all duplicates: if the service died between
the commit and the announcement, the redelivered batch announces it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import DocumentStalled, DocumentStatusChanged, Event
from docflow_shared.messaging import Publish
from docflow_status.domain.ownership import unclaimed
from docflow_status.domain.ports import QuietDocuments, UnownedEvents
from docflow_status.domain.ports import ReadModel as ReadModel  # consumer.py imports it from here
from docflow_status.domain.projection import DocumentState, Projected, evolve

# Snapshot event ids are derived from (document, version): the same snapshot
# announced twice has the same id.
_SNAPSHOT_IDS = uuid.UUID("5b0c1d3e-7a5e-4d4c-9f6a-3c2f1e0d9b8a")


def snapshot(state: DocumentState, version: int, correlation_id: str) -> DocumentStatusChanged:
    """The status topic's record of ``state`` at ``version``."""
    return DocumentStatusChanged(
        event_id=uuid.uuid5(_SNAPSHOT_IDS, f"{state.id}:{version}"),
        document_id=state.id,
        tenant_id=state.tenant_id,
        correlation_id=correlation_id,
        attempt=state.attempt,
        version=version,
        filename=state.filename,
        content_type=state.content_type,
        status=state.status,
        stage=state.stage,
        progress=state.progress,
        message=state.message,
        pages=state.pages,
        chunks_total=state.chunks_total,
        chunks_embedded=state.chunks_embedded,
        error=state.error,
        stalled=state.stalled,
        retries=state.retries,
        metadata=state.metadata,
        deleted=state.deleted_at is not None,
        created_at=state.created_at,
        started_at=state.started_at,
        completed_at=state.completed_at,
        updated_at=state.updated_at,
    )


async def project_events(
    events: Sequence[Event],
    *,
    read_model: ReadModel,
    announce: Publish,
    finished: Callable[[Sequence[DocumentState]], None] | None = None,
) -> Projected:
    """Apply a batch of events, then announce the documents it was about; returns what
    was applied, and the events rejected (domain/ownership.py). ``finished`` is told
    of the documents the batch made terminal (the metrics)."""
    projected = await read_model.apply_all(events, evolve)
    if finished is not None:
        finished(projected.finished)
    # The owner's latest word on each document: its correlation id.
    correlation = {
        event.document_id: event.correlation_id
        for event in events
        if event.document_id in projected.documents
        and projected.documents[event.document_id][1].tenant_id == event.tenant_id
    }
    # Sent together: the producer batches them, and each is acknowledged
    # before the Kafka offsets of the batch are committed.
    await asyncio.gather(
        *(
            announce(snapshot(state, version, correlation.get(document_id, str(document_id))))
            for document_id, (version, state) in projected.documents.items()
        )
    )
    return projected


class UnownedSweep:
    """Gives up events whose document's upload was not read within ``ttl_s``.

    Such an event was parked by the read model (domain/ownership.py); after
    the wait it goes to the dead-letter topic as untrusted (reason
    ``no_upload``), from where an operator can re-drive it, and the table
    of parked events stays bounded however many an attacker publishes.
    """

    def __init__(
        self,
        events: UnownedEvents,
        reject: Callable[[bytes, None, UntrustedEvent], Awaitable[None]],
        *,
        ttl_s: float,
    ) -> None:
        self._events = events
        self._reject = reject
        self.ttl_s = ttl_s

    async def sweep(self, now: datetime | None = None, limit: int = 500) -> int:
        """Dead-letter what waited too long, then forget it; returns how many."""
        before = (now or datetime.now(UTC)) - timedelta(seconds=self.ttl_s)
        events = await self._events.unowned_before(before, limit)
        for event in events:
            await self._reject(event.model_dump_json().encode(), None, unclaimed(event, self.ttl_s))
        await self._events.forget_unowned(events)
        return len(events)


class Watchdog:
    """Announces documents whose current attempt made no progress for ``stall_after``.

    The announcement is a ``DocumentStalled`` event, projected like any other
    (so the read model, the status topic and a replay all show it); the next
    event of the attempt that happened later clears it. Each stall is
    announced once per process; several replicas may each announce it, which
    the fold takes as one.
    """

    def __init__(
        self,
        documents: QuietDocuments,
        publish: Publish,
        *,
        stall_after: timedelta,
        unowned: UnownedSweep | None = None,
    ) -> None:
        self._documents = documents
        # Swept in the same rounds: events that waited too long for their upload.
        self.unowned = unowned
        self._publish = publish
        self.stall_after = stall_after
        self._announced: set[tuple[UUID, datetime]] = set()

    async def sweep(self, now: datetime | None = None, limit: int = 500) -> list[DocumentStalled]:
        """Announce what is stalled now; returns the announcements made."""
        cutoff = (now or datetime.now(UTC)) - self.stall_after
        quiet = await self._documents.quiet_since(cutoff, limit)
        stalls = [
            DocumentStalled(
                document_id=state.id,
                tenant_id=state.tenant_id,
                # The read model keeps no correlation id; the document's id
                # ties the announcement to it in logs.
                correlation_id=str(state.id),
                attempt=state.attempt,
                since=state.updated_at,
                stage=state.stage,
            )
            for state in quiet
            if state.updated_at is not None and (state.id, state.updated_at) not in self._announced
        ]
        await asyncio.gather(*(self._publish(stall) for stall in stalls))
        self._announced |= {(stall.document_id, stall.since) for stall in stalls}
        if len(self._announced) > 100_000:
            self._announced.clear()
        return stalls
