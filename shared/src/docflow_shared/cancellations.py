"""Which documents were cancelled or deleted, as every replica of a stage sees it.

The extractor and the embedder check this between batches, so a cancelled
attempt (or a deleted document) stops at its next batch. Every replica reads
``docflow.document.cancelled.v1`` and ``docflow.document.deleted.v1`` in full,
without a consumer group (each replica needs every cancellation, not a share
of them), from the earliest retained offset, so a replica that starts late
(or was down while a document was cancelled) still knows about earlier
cancellations.

What a start reads is bounded by the documents, not by history: both topics
are compacted and keyed by tenant and document (``topics.STOPS_CONFIG``,
``DocumentCancelled.kafka_key``), so Kafka keeps each document's latest
cancellation and its deletion, plus the last day's records whole. Only the
latest cancellation of a document matters here: attempts only grow, and a
cancelled attempt stops every earlier one too.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from uuid import UUID

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from pydantic import ValidationError

from docflow_shared import topics
from docflow_shared.events import DocumentCancelled, DocumentDeleted, parse_event

logger = logging.getLogger(__name__)

_DELETED = sys.maxsize  # a deleted document is cancelled in every attempt
# Records handled per poll while following the topics.
READ_BATCH = 1000


class Cancellations:
    """The latest cancelled attempt per document, bounded in memory (oldest forgotten).

    Keyed by tenant *and* document: a cancellation or deletion published under
    another tenant (forged) stops nothing of the document's own tenant.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._attempts: OrderedDict[tuple[str, UUID], int] = OrderedDict()
        # Records read from the topics since this replica started (benchmarks, tests).
        self.records_read = 0

    def record(self, event: DocumentCancelled | DocumentDeleted) -> None:
        self.stop(
            event.tenant_id,
            event.document_id,
            _DELETED if isinstance(event, DocumentDeleted) else event.attempt,
        )

    def stop(self, tenant_id: str, document_id: UUID, attempt: int) -> None:
        """No more work on this attempt (cancelled, or failed here: its later batches
        would be wasted)."""
        key = (tenant_id, document_id)
        current = self._attempts.pop(key, 0)
        self._attempts[key] = max(current, attempt)
        while len(self._attempts) > self.capacity:
            self._attempts.popitem(last=False)

    def cancelled(self, tenant_id: str, document_id: UUID, attempt: int) -> bool:
        """Whether work on this attempt of the document should stop."""
        return self._attempts.get((tenant_id, document_id), 0) >= attempt

    def deleted(self, tenant_id: str, document_id: UUID) -> bool:
        return self._attempts.get((tenant_id, document_id), 0) == _DELETED


def follow_cancellations(
    broker: KafkaBroker | KafkaRouter,
    cancellations: Cancellations,
    *,
    names: tuple[str, ...] = topics.STOPS,
) -> None:
    """Subscribe this replica (no consumer group) to cancellations and deletions
    (``names``: the topics, other ones in tests and benchmarks)."""

    @broker.subscriber(
        *names,
        group_id=None,
        auto_offset_reset="earliest",
        # Nothing to commit without a group: every start reads them all again.
        ack_policy=AckPolicy.ACK_FIRST,
        # What a start reads, a poll at a time: one message at a time read
        # ~600 records/s here (bench/cancellation_replay.py).
        batch=True,
        max_records=READ_BATCH,
        batch_timeout_ms=200,
    )
    async def on_cancellation(message: KafkaMessage) -> None:
        """Remember that a document's attempt was cancelled, or the document deleted."""
        bodies: list[bytes] = list(message.body)  # type: ignore[arg-type]  # a batch: a list
        cancellations.records_read += len(bodies)
        for body in bodies:
            try:
                event = parse_event(body)
            except ValidationError as exc:
                logger.error("skipping unreadable cancellation: %s", exc)
                continue
            if isinstance(event, DocumentCancelled | DocumentDeleted):
                cancellations.record(event)
