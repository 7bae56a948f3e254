"""TextExtracted batch → vectors in Qdrant, DocumentProgressed (embedding), DocumentIndexed.

A document is indexed when every chunk of its attempt is stored. Its batches
come in order on one partition, but one of them may have been parked for a
retry (a transient error) while later ones went on; so when the last batch
is stored, the vector store is asked how many of the attempt's chunks it
holds. If some are missing, the last batch is returned as waiting and the
consumer parks it too: it is looked at again after the retry delay, by when
the batch before it has had its own retry. ``DocumentIndexed`` has an id
derived from the document and attempt, so announcing it twice is announcing
it once.

Batches of a cancelled attempt are skipped; a deleted document's vectors are
removed (``DocumentDeleted``), also when a batch of it was being embedded as
the deletion arrived.

While a re-embedding fills a new collection (``reindex.py``), chunks are
embedded into it too (``also``; a failure there does not fail the document),
and deletions remove from it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid5

from anyio import to_thread

from docflow_embedder.domain import (
    Embedder,
    Found,
    KeywordsMissing,
    Reranker,
    RerankFailed,
    SearchFilters,
    SearchMode,
    Target,
    VectorPoint,
    VectorStore,
    point_id,
)
from docflow_embedder.keywords import query_vector
from docflow_shared.cancellations import Cancellations
from docflow_shared.errors import TransientError, UntrustedEvent
from docflow_shared.events import (
    Chunk,
    DocumentDeleted,
    DocumentFacts,
    DocumentIndexed,
    DocumentProgressed,
    ErrorCode,
    Stage,
    TextExtracted,
)
from docflow_shared.events.metadata import metadata_terms
from docflow_shared.messaging import Publish
from docflow_shared.telemetry import log_context
from docflow_shared.trust import check_tenant

logger = logging.getLogger(__name__)

# DocumentIndexed ids: one per attempt of a tenant's document (the tenant in it, so that
# a forged batch under another tenant cannot make the real event's id).
_INDEXED_IDS = UUID("0b7f3c52-9a41-4d8e-b2a6-4c1d5e9f8a37")


async def embed_chunks(
    event: TextExtracted,
    *,
    embedder: Embedder,
    vectors: VectorStore,
    publish: Publish,
    cancellations: Cancellations | None = None,
) -> None:
    """Embed one batch of chunks and store the vectors; announce progress and completion."""
    await embed_batches(
        [event], embedder=embedder, vectors=vectors, publish=publish, cancellations=cancellations
    )


async def embed_batches(
    events: Sequence[TextExtracted],
    *,
    embedder: Embedder,
    vectors: VectorStore,
    publish: Publish,
    cancellations: Cancellations | None = None,
    also: Target | None = None,
) -> list[TextExtracted]:
    """Embed several chunk batches, of one document or several, in one model call and
    one vector-store write; then announce each batch's progress and each finished
    document, in the order the batches came. Returns the last batches whose
    document still misses chunks (parked for a retry): the caller parks them too.

    Small documents waiting together share a model call instead of each paying
    for one (bench/embedder.py measures the difference).
    """
    cancellations = cancellations or Cancellations()
    waiting: list[TextExtracted] = []
    live = [e for e in events if not cancellations.cancelled(e.tenant_id, e.document_id, e.attempt)]
    chunks = [(event, chunk) for event in live for chunk in event.chunks]
    if chunks:
        await _store(chunks, Target(embedder, vectors))
        if also is not None:
            try:
                await _store(chunks, also)
            except Exception as exc:
                # The documents are indexed (in the active collection); the
                # reindex's second pass embeds what is missing, or the reindex
                # fails on the same error and is abandoned.
                logger.warning(
                    "could not also embed into %s, which a reindex is filling: %s",
                    also.vectors.collection,
                    exc,
                )
    for event in live:
        with log_context(document=str(event.document_id), correlation=event.correlation_id):
            if await _announce(event, embedder, vectors, publish, cancellations, also):
                waiting.append(event)
    return waiting


async def _announce(
    event: TextExtracted,
    embedder: Embedder,
    vectors: VectorStore,
    publish: Publish,
    cancellations: Cancellations,
    also: Target | None,
) -> bool:
    """After a batch was stored: its progress, and the document indexed if it is
    complete. True when it is the last batch and chunks are still missing."""
    if cancellations.deleted(event.tenant_id, event.document_id):
        # Deleted while this batch was embedded: take its points away again.
        await remove_vectors(
            DocumentDeleted.caused_by(event),
            vectors=vectors,
            also=also.vectors if also else None,
        )
        return False
    if event.chunks:
        await publish(
            DocumentProgressed.caused_by(
                event,
                stage=Stage.EMBEDDING,
                done=event.chunks[-1].index + 1,
                total=event.chunks_total,
            )
        )
    return event.last and not await _indexed_if_complete(
        event, embedder=embedder, vectors=vectors, publish=publish
    )


def _whole_document(event: TextExtracted, total: int) -> bool:
    """Whether the batch itself holds every chunk of its document (a small
    document's only batch): just stored, so there is nothing to count."""
    return len(event.chunks) == total and {c.index for c in event.chunks} == set(range(total))


def missing_chunks(event: TextExtracted) -> TransientError:
    """Why a last batch waits: chunks of its document are parked for a retry."""
    return TransientError(
        ErrorCode.INTERNAL,
        f"chunks of the document are not stored yet (a batch of it is waiting for a "
        f"retry); {event.chunks_total} chunks in all",
    )


async def _indexed_if_complete(
    event: TextExtracted, *, embedder: Embedder, vectors: VectorStore, publish: Publish
) -> bool:
    """Announce the document indexed if every chunk of its attempt is stored."""
    total = event.chunks_total or 0
    if total and not _whole_document(event, total):
        # Asking the store costs little on a server (payload indexes), but Qdrant's
        # local mode scans every point: about 13 ms per 1,000 points on 2 cores.
        stored = await to_thread.run_sync(
            vectors.stored, event.tenant_id, event.document_id, event.attempt
        )
        if stored < total:
            return False
    await publish(
        DocumentIndexed.caused_by(
            event,
            event_id=uuid5(_INDEXED_IDS, f"{event.tenant_id}:{event.document_id}:{event.attempt}"),
            chunks_total=total,
            collection=vectors.collection,
            embedding_model=embedder.model,
        )
    )
    logger.info(
        "indexed document %s (attempt %d): %d chunks in %s",
        event.document_id,
        event.attempt,
        total,
        vectors.collection,
    )
    return True


def _facts_payload(facts: DocumentFacts | None) -> dict[str, Any]:
    """What searches filter by (adapters/qdrant.py, ``PAYLOAD_INDEXES``); nothing for
    chunks of events from before the extractor sent the facts."""
    if facts is None:
        return {}
    return {
        "filename": facts.filename,
        "uploaded_at": facts.uploaded_at.isoformat(),
        "metadata": facts.metadata,
        "metadata_terms": metadata_terms(facts.metadata),
    }


async def _store(chunks: Sequence[tuple[TextExtracted, Chunk]], target: Target) -> None:
    """Embed ``chunks`` with the target's model and write them to its collection."""
    model = target.embedder
    # Each chunk is embedded with its document's title and its headings
    # (``Chunk.embedded``); the payload keeps its own text, and both apart.
    embeddings = await to_thread.run_sync(model.embed, [c.embedded for _, c in chunks])
    points = [
        VectorPoint(
            id=point_id(event.tenant_id, event.document_id, chunk.index, model.model),
            vector=vector,
            payload={
                "tenant_id": event.tenant_id,
                "document_id": str(event.document_id),
                "chunk_index": chunk.index,
                "page": chunk.page,
                "page_end": chunk.page_end,
                "char_start": chunk.char_start,
                "char_end": chunk.char_end,
                "text": chunk.text,
                "title": chunk.title,
                "headings": list(chunk.headings),
                "attempt": event.attempt,
                **_facts_payload(event.document),
            },
        )
        for (event, chunk), vector in zip(chunks, embeddings, strict=True)
    ]
    await to_thread.run_sync(target.vectors.upsert, points)


async def search_chunks(
    query: str,
    tenant_id: str,
    limit: int,
    *,
    embedder: Embedder,
    vectors: VectorStore,
    mode: SearchMode = "dense",
    reranker: Reranker | None = None,
    candidates: int = 30,
    filters: SearchFilters | None = None,
    group_size: int | None = None,
) -> Found:
    """The tenant's chunks that match ``query``, of those ``filters`` allow, best first.

    ``dense``: closest in meaning (the query embedded by the model that embedded the
    chunks); ``keyword``: best BM25 match of its words (no model call); ``hybrid``:
    both, fused by rank (RRF). A collection made before keyword vectors answers
    ``hybrid`` with ``dense`` and says so in ``note``; ``keyword`` raises
    ``KeywordsMissing`` there.

    With ``group_size``, the answer is by document: up to ``limit`` documents, each
    once with its best ``group_size`` chunks (``Found.groups``; ``hits`` holds the
    same chunks in that order), found by the same query, in any mode.

    With a ``reranker``, the best ``candidates`` (at least ``limit``) are scored by
    it and the best ``limit`` of them returned in its order, with its scores. If
    it fails, the results come in the search's order, and ``note`` says why.
    Documents (``group_size``) are not reranked; ``note`` says so.
    """
    note = None
    if mode != "dense" and not vectors.keywords:
        if mode == "keyword":
            raise KeywordsMissing(
                f"{vectors.collection} was made before keyword search: re-embed it "
                "(docflow reindex) for keyword and hybrid search"
            )
        mode = "dense"
        note = (
            f"hybrid search fell back to dense: {vectors.collection} was made before "
            "keyword search; re-embed it (docflow reindex) to search by keywords too"
        )
    vector = None
    if mode != "keyword":
        [vector] = await to_thread.run_sync(embedder.embed, [query])
    keywords = query_vector(query) if mode != "dense" else None
    filters = filters or None
    if group_size is not None:
        groups = await to_thread.run_sync(
            vectors.search_groups, vector, tenant_id, limit, group_size, keywords, filters
        )
        if reranker is not None:
            unranked = "not reranked: results by document are not reranked"
            note = f"{note}; {unranked}" if note else unranked
        return Found([hit for group in groups for hit in group.hits], mode, note, groups=groups)
    wanted = max(limit, candidates) if reranker is not None else limit
    hits = await to_thread.run_sync(vectors.search, vector, tenant_id, wanted, keywords, filters)
    if reranker is None or not hits:
        return Found(hits[:limit], mode, note)
    try:
        scores = await reranker.rerank(query, [hit.text for hit in hits])
    except RerankFailed as exc:
        logger.warning("search not reranked: %s", exc)
        failed = f"not reranked: {exc}"
        return Found(hits[:limit], mode, f"{note}; {failed}" if note else failed)
    order = sorted(range(len(hits)), key=lambda i: -scores[i])[:limit]
    return Found([replace(hits[i], score=scores[i]) for i in order], mode, note, reranked=True)


async def remove_vectors(
    event: DocumentDeleted, *, vectors: VectorStore, also: VectorStore | None = None
) -> None:
    """Remove a deleted document's vectors: from the active collection first, then
    from the one a re-embedding fills (which relies on that order).

    Only the event's tenant's points of the document are ever removed (the
    filter is on both). Raises ``UntrustedEvent`` when the tenant id is
    malformed, or when the document's vectors are all another tenant's: a
    forged deletion, which would remove nothing, but is worth knowing of. (A
    document's own deletion delivered again after its points are gone, while
    another tenant forged points under its id, is counted too: harmless, as
    there is nothing of its tenant's left to remove.)
    """
    check_tenant(event)
    owner = vectors.owned_by_another_tenant
    if await to_thread.run_sync(owner, event.tenant_id, event.document_id):
        raise UntrustedEvent(
            "tenant_changed",
            f"deletion of document {event.document_id} under tenant {event.tenant_id!r}, "
            "whose vectors are another tenant's",
        )
    for store in (vectors, *([also] if also else [])):
        await to_thread.run_sync(store.delete_document, event.tenant_id, event.document_id)
