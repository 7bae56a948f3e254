"""The embedder's subscribers: thin adapters from Kafka to the handlers."""

from __future__ import annotations

import logging

from anyio import to_thread
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from prometheus_client import Counter
from pydantic import ValidationError

from docflow_embedder.domain import Index
from docflow_embedder.handlers import embed_batches, missing_chunks, remove_vectors
from docflow_embedder.reindex import Reindexer
from docflow_shared import topics
from docflow_shared.cancellations import Cancellations
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

logger = logging.getLogger(__name__)

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
                if not cancellations.cancelled(e.document_id, e.attempt)
            )
        )
        return waiting

    async def fail(
        body: bytes, event: TextExtracted, exc: Exception, origin: Origin | None
    ) -> None:
        if await failures.fail_body(body, exc, origin):
            # The attempt has failed: its later batches are skipped, not embedded.
            cancellations.stop(event.document_id, event.attempt)

    @batch_subscriber(broker, topics.EXTRACTED, group_id=GROUP_ID, max_records=max_batches)
    async def on_text_extracted(message: KafkaMessage) -> None:
        """Embed what one poll returned into the vector store."""
        bodies: list[bytes] = list(message.body)  # type: ignore[arg-type]  # a batch: a list
        records = message.raw_message if isinstance(message.raw_message, tuple) else ()
        origins = [Origin.of_record(r) for r in records] if len(records) == len(bodies) else []
        readable: list[tuple[bytes, TextExtracted, Origin | None]] = []
        for n, body in enumerate(bodies):
            origin = origins[n] if origins else None
            try:
                readable.append((body, TextExtracted.model_validate_json(body), origin))
            except ValidationError as exc:
                await failures.fail_body(body, exc, origin)
        try:
            waiting = await embed([event for _, event, _ in readable])
        except Exception as exc:
            if len(readable) == 1:
                await fail(*readable[0][:2], exc, readable[0][2])
                return
            # One document's problem must not fail the others: each alone.
            logger.warning(
                "a poll of %s chunk batches failed (%s); embedding them one by one",
                len(readable),
                exc,
            )
            waiting = []
            for body, event, origin in readable:
                try:
                    waiting += await embed([event])
                except Exception as one:
                    await fail(body, event, one, origin)
        for body, event, origin in readable:
            if event in waiting:
                await fail(body, event, missing_chunks(event), origin)

    async def retry_batch(body: bytes) -> None:
        event = TextExtracted.model_validate_json(body)
        if await embed([event]):
            raise missing_chunks(event)

    return retry_batch


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

    async def read(message: KafkaMessage) -> ReindexRequested | ReindexAdvanced | None:
        try:
            event = parse_reindex_event(message.body)
        except ValidationError as exc:
            # Unreadable: nobody can act on it; it must not stop the operation's topic.
            logger.error("an unreadable reindex event: %s", exc)
            if parking is not None:
                reason = f"unreadable message: {exc}"[:500]
                await parking.dead_letter(
                    message.body, Origin.of_message(message), reason, "embedding"
                )
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
