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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from docflow_shared.events import DocumentStalled, DocumentStatusChanged, Event
from docflow_shared.messaging import Publish
from docflow_status.domain.ports import QuietDocuments
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
    was applied, and the events rejected (a known document under another tenant).
    ``finished`` is told of the documents the batch made terminal (the metrics)."""
    projected = await read_model.apply_all(events, evolve)
    if finished is not None:
        finished(projected.finished)
    refused = {event.event_id for event in projected.rejected}
    correlation = {
        event.document_id: event.correlation_id for event in events if event.event_id not in refused
    }
    # Sent together: the producer batches them, and each is acknowledged
    # before the Kafka offsets of the batch are committed.
    await asyncio.gather(
        *(
            announce(snapshot(state, version, correlation[document_id]))
            for document_id, (version, state) in projected.documents.items()
        )
    )
    return projected


class Watchdog:
    """Announces documents whose current attempt made no progress for ``stall_after``.

    The announcement is a ``DocumentStalled`` event, projected like any other
    (so the read model, the status topic and a replay all show it); the next
    event of the attempt that happened later clears it. Each stall is
    announced once per process; several replicas may each announce it, which
    the fold takes as one.
    """

    def __init__(
        self, documents: QuietDocuments, publish: Publish, *, stall_after: timedelta
    ) -> None:
        self._documents = documents
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
