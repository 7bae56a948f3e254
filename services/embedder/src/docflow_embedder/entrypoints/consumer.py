"""The embedder's subscribers: thin adapters from Kafka to the handlers."""

from __future__ import annotations

from anyio import to_thread
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from prometheus_client import Counter

from docflow_embedder.domain import Index
from docflow_embedder.handlers import embed_batches, missing_chunks, remove_vectors
from docflow_embedder.reindex import Reindexer
from docflow_shared import decoding, topics
from docflow_shared.batches import Failures, Item, dead_letter, handle_batch
from docflow_shared.cancellations import Cancellations
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import (
    DocumentDeleted,
    ReindexAdvanced,
    ReindexRequested,
    Stage,
    TextExtracted,
    parse_reindex_event,
)
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.messaging import Publish, batch_subscriber, subscriber
from docflow_shared.metrics import StageMetrics
from docflow_shared.retries import Handler, Origin, Parking
from docflow_shared.trust import check_tenant

GROUP_ID = "docflow-embedder"
# Deletions in a group of their own: a process has one consumer per group, since
# a second member joining rebalances the first, and the chunk batches being
# embedded then are not committed but embedded again.
DELETED_GROUP_ID = "docflow-embedder-deletions"
# Re-embedding steps, one replica at a time per operation (keyed by reindex id).
REINDEX_GROUP_ID = "docflow-embedder-reindex"

# Chunk batches taken from one poll and embedded together (one model call, one
# Qdrant write), whichever documents they belong to. A poll returns at once
# what is there, up to this many; it waits (up to 200 ms) only when nothing is.
MAX_BATCHES_PER_CALL = 16


def register(
    broker: KafkaBroker,
    *,
    index: Index,
    publish: Publish,
    cancellations: Cancellations,
    failures: FailDocumentOnError,
    stages: StageMetrics,
    chunks_embedded: Counter,
    max_batches: int = MAX_BATCHES_PER_CALL,
) -> Handler:
    """Subscribe the embedder to chunk batches; a document that cannot be embedded
    fails on its own, the others in the same poll go on. Returns the handler of a
    chunk batch back from a retry topic."""

    async def embed(events: list[TextExtracted]) -> list[TextExtracted]:
        # Asked at every poll, so a re-embedding's start and switch reach every replica.
        targets = await to_thread.run_sync(index.targets)
        with stages.timed(Stage.EMBEDDING.value):
            waiting = await embed_batches(
                events,
                embedder=targets.active.embedder,
                vectors=targets.active.vectors,
                publish=publish,
                cancellations=cancellations,
                also=targets.building,
            )
        chunks_embedded.inc(
            sum(
                len(e.chunks)
                for e in events
                if not cancellations.cancelled(e.tenant_id, e.document_id, e.attempt)
            )
        )
        return waiting

    async def embed_items(items: list[Item[TextExtracted]]) -> Failures[TextExtracted]:
        # A batch under a malformed tenant id is rejected unembedded (forged).
        verdicts = [(item, untrusted(item.event)) for item in items]
        rejected: list[tuple[Item[TextExtracted], Exception]] = [
            (item, exc) for item, exc in verdicts if exc is not None
        ]
        trusted = [item for item, exc in verdicts if exc is None]
        waiting = await embed([item.event for item in trusted])
        # A last batch whose document's earlier chunks are not stored yet fails
        # on its own (a transient error: it waits on a retry topic for them).
        return rejected + [
            (item, missing_chunks(item.event)) for item in trusted if item.event in waiting
        ]

    async def fail(item: Item[TextExtracted], exc: Exception) -> None:
        if isinstance(exc, UntrustedEvent):
            # Dead-lettered; the attempt it names (maybe another tenant's) goes on.
            await failures.fail_body(item.body, exc, item.origin)
            return
        if await failures.fail_body(item.body, exc, item.origin):
            # The attempt has failed: its later batches are skipped, not embedded.
            cancellations.stop(item.event.tenant_id, item.event.document_id, item.event.attempt)

    @batch_subscriber(broker, topics.EXTRACTED, group_id=GROUP_ID, max_records=max_batches)
    async def on_text_extracted(message: KafkaMessage) -> None:
        """Embed what one poll returned into the vector store."""
        await handle_batch(
            message,
            TextExtracted.model_validate_json,
            embed_items,
            # An unreadable batch fails its document (or is dead-lettered) alone;
            # so does a document whose batch cannot be embedded.
            on_invalid=failures.fail_body,
            on_failed=fail,
        )

    async def retry_batch(body: bytes) -> None:
        event = TextExtracted.model_validate_json(body)
        check_tenant(event)
        if await embed([event]):
            raise missing_chunks(event)

    return retry_batch


def untrusted(event: TextExtracted) -> UntrustedEvent | None:
    """Why a chunk batch is not to be embedded at all (None: it may be)."""
    try:
        check_tenant(event)
    except UntrustedEvent as exc:
        return exc
    return None


def register_deletions(router: KafkaRouter, *, index: Index) -> Handler:
    """Subscribe the embedder to deletions (on a router with the failure middleware:
    a removal that fails for a transient reason is retried through the retry
    topics, like a chunk batch). Returns the handler of a deletion back from a
    retry topic."""

    async def remove(event: DocumentDeleted) -> None:
        targets = await to_thread.run_sync(index.targets)
        await remove_vectors(
            event,
            vectors=targets.active.vectors,
            also=targets.building.vectors if targets.building else None,
        )

    @subscriber(router, topics.DELETED, group_id=DELETED_GROUP_ID)
    async def on_document_deleted(event: DocumentDeleted) -> None:
        """Remove a deleted document's vectors."""
        await remove(event)

    async def retry_removal(body: bytes) -> None:
        await remove(DocumentDeleted.model_validate_json(body))

    return retry_removal


def register_reindex(
    broker: KafkaBroker, *, reindexer: Reindexer, parking: Parking | None = None
) -> None:
    """Subscribe the embedder to re-embedding requests and to its own steps."""

    unreadable = dead_letter(parking, "embedding")

    async def read(message: KafkaMessage) -> ReindexRequested | ReindexAdvanced | None:
        try:
            event = decoding.read(parse_reindex_event, message.body)
        except ValueError as exc:
            # Unreadable: nobody can act on it; it must not stop the operation's topic.
            await unreadable(message.body, exc, Origin.of_message(message))
            return None
        return event if isinstance(event, ReindexRequested | ReindexAdvanced) else None

    @subscriber(broker, topics.REINDEX_REQUESTED, group_id=REINDEX_GROUP_ID)
    async def on_reindex_requested(message: KafkaMessage) -> None:
        """Start re-embedding into the requested model's collection."""
        event = await read(message)
        if isinstance(event, ReindexRequested):
            await reindexer.start(event)

    @subscriber(broker, topics.REINDEX_ADVANCED, group_id=REINDEX_GROUP_ID)
    async def on_reindex_advanced(message: KafkaMessage) -> None:
        """Take a re-embedding's next step."""
        event = await read(message)
        if isinstance(event, ReindexAdvanced):
            await reindexer.advance(event)
