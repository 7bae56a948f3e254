"""Re-embedding without re-uploading: ReindexRequested → ReindexAdvanced … → ReindexCompleted.

The chunks come from the active collection itself: each point's payload is
one stored chunk (text, pages, offsets, tenant, document), so nothing is
extracted again. The reindex reads the active collection a page at a time,
embeds with the new model what the new collection does not have yet and
writes it there; after each page it publishes ``ReindexAdvanced`` with where
it stopped, and continues when it reads that event back. So a reindex holds
no consumer for long, survives restarts (it continues from its last page),
and asking again after a failure skips what is already there.

While it runs, the ``docflow_building`` alias makes every replica embed new
documents into both collections, and deletions remove from both. The first
pass is followed by a second, which only checks: it catches chunks written
before a replica saw the alias. Then, when the new collection holds as many
chunks as the active one, one alias operation makes it active: searches use
the old collection until that moment and the new one from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import NAMESPACE_URL, UUID, uuid5

from anyio import to_thread

from docflow_embedder.adapters.qdrant import QdrantIndex, QdrantVectorStore, collection_name
from docflow_embedder.domain import Embedder, Models, ModelUnavailable, VectorPoint, point_id
from docflow_shared.events import (
    ReindexAdvanced,
    ReindexCompleted,
    ReindexEvent,
    ReindexFailed,
    ReindexRequested,
    embedded_text,
)
from docflow_shared.messaging import PublishAny

logger = logging.getLogger(__name__)

# Chunks read, embedded and written per step: one model call, one write.
PAGE_SIZE = 128

_STEP_NAMESPACE = uuid5(NAMESPACE_URL, "https://docflow.dev/reindex-step")


class Reindexer:
    """Carries out re-embedding operations, one page per event."""

    def __init__(
        self,
        index: QdrantIndex,
        models: Models,
        publish: PublishAny,
        *,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._index = index
        self._models = models
        self._publish = publish
        self._page_size = page_size

    async def start(self, event: ReindexRequested) -> None:
        """Create the new model's collection, point ``docflow_building`` at it, and
        take the first step."""
        try:
            embedder = await to_thread.run_sync(self._models.get, event.embedding)
        except (ModelUnavailable, ValueError) as exc:
            await self._fail(event, str(exc))
            return
        source = await to_thread.run_sync(self._index.active_name)
        target = collection_name(embedder.model, embedder.dimension)
        if target == source:
            await self._fail(
                event,
                f"{source} already holds {embedder.model}'s vectors: nothing to re-embed",
            )
            return
        try:
            await to_thread.run_sync(
                self._index.create, target, event.embedding, embedder.dimension
            )
            await to_thread.run_sync(self._index.begin, target)
            logger.info("reindex %s: %s → %s", event.reindex_id, source, target)
            await self._step(
                event,
                source=source,
                target=target,
                sweep=1,
                cursor=None,
                more=True,
                done=0,
                embedded=0,
            )
        except Exception as exc:
            logger.exception("reindex %s could not start", event.reindex_id)
            await to_thread.run_sync(self._index.abandon, target)
            await self._fail(event, f"{type(exc).__name__}: {exc}")

    async def advance(self, event: ReindexAdvanced) -> None:
        """Take the step after ``event``: the next page, the second pass, or the switch."""
        building = await to_thread.run_sync(self._index.building_name)
        if building is None:
            # Over (switched, or failed): a step read again changes nothing, except
            # that the last one announces the switch again, in case the announcement
            # was lost when the service stopped right after switching.
            final = event.sweep == 2 and not event.more
            if final and await to_thread.run_sync(self._index.active_name) == event.target:
                await self._completed(event, switched=True)
            return
        if building != event.target:
            await self._fail(event, f"another reindex (into {building}) has started since")
            return
        try:
            if event.more:
                await self._page(event)
            elif event.sweep == 1:
                await self._step(event, sweep=2, cursor=None, more=True, done=0)
            else:
                await self._finish(event)
        except Exception as exc:
            logger.exception("reindex %s failed", event.reindex_id)
            await to_thread.run_sync(self._index.abandon, event.target)
            await self._fail(
                event,
                f"{type(exc).__name__}: {exc}. Chunks already re-embedded are kept: "
                "asking again continues from them.",
            )

    async def _page(self, event: ReindexAdvanced) -> None:
        embedder = await to_thread.run_sync(self._models.get, event.embedding)
        source = self._index.store(event.source)
        target = self._index.store(event.target)
        points, cursor = await to_thread.run_sync(
            source.page, event.cursor, self._page_size, event.document_ids
        )
        embedded = await to_thread.run_sync(_copy, points, source, target, embedder)
        await self._step(
            event,
            cursor=cursor,
            more=cursor is not None,
            done=event.done + len(points),
            embedded=event.embedded + embedded,
        )

    async def _finish(self, event: ReindexAdvanced) -> None:
        source = self._index.store(event.source)
        target = self._index.store(event.target)
        have = await to_thread.run_sync(target.count)
        need = await to_thread.run_sync(source.count)
        if have >= need:
            await to_thread.run_sync(self._index.switch, event.target)
        await self._completed(event, switched=have >= need, have=have, need=need)

    async def _completed(
        self, event: ReindexAdvanced, *, switched: bool, have: int = 0, need: int = 0
    ) -> None:
        if switched:
            message = (
                f"searches and new documents now use {event.target} ({event.embedding.model}); "
                f"{event.source} is kept until you delete it"
            )
        else:
            message = (
                f"{event.target} holds {have} of the {need} chunks of {event.source}: "
                "re-embed the other documents to switch (new documents go to both meanwhile)"
            )
        logger.info("reindex %s: %s", event.reindex_id, message)
        await self._publish(
            ReindexCompleted.caused_by(
                event,
                event_id=_step_id(event.reindex_id, "completed"),
                embedding=event.embedding,
                source=event.source,
                target=event.target,
                embedded=event.embedded,
                switched=switched,
                message=message,
            )
        )

    async def _step(
        self,
        cause: ReindexRequested | ReindexAdvanced,
        *,
        cursor: str | None,
        more: bool,
        done: int,
        embedded: int | None = None,
        sweep: int | None = None,
        source: str | None = None,
        target: str | None = None,
    ) -> None:
        previous = cause if isinstance(cause, ReindexAdvanced) else None
        source = source or (previous.source if previous else "")
        target = target or (previous.target if previous else "")
        sweep = sweep or (previous.sweep if previous else 1)
        total = (
            previous.total
            if previous is not None and previous.sweep == sweep
            else await to_thread.run_sync(self._index.store(source).count, cause.document_ids)
        )
        await self._publish(
            ReindexAdvanced.caused_by(
                cause,
                # The same step has the same id: a step taken twice after a
                # crash is one step to the status service.
                event_id=_step_id(cause.reindex_id, f"{sweep}:{cursor}:{more}"),
                embedding=cause.embedding,
                document_ids=cause.document_ids,
                source=source,
                target=target,
                sweep=sweep,
                cursor=cursor,
                more=more,
                done=done,
                embedded=embedded if embedded is not None else getattr(cause, "embedded", 0),
                total=total,
            )
        )

    async def _fail(self, cause: ReindexEvent, reason: str) -> None:
        logger.warning("reindex %s failed: %s", cause.reindex_id, reason)
        await self._publish(
            ReindexFailed.caused_by(
                cause, event_id=_step_id(cause.reindex_id, "failed"), reason=reason
            )
        )


def _copy(
    points: Sequence[VectorPoint],
    source: QdrantVectorStore,
    target: QdrantVectorStore,
    embedder: Embedder,
) -> int:
    """Embed into ``target`` the chunks of ``points`` it lacks; returns how many."""
    twins = {
        point.id: point_id(
            point.payload["tenant_id"],
            UUID(point.payload["document_id"]),
            point.payload["chunk_index"],
            embedder.model,
        )
        for point in points
    }
    present = target.existing(list(twins.values()))
    missing = [p for p in points if twins[p.id] not in present]
    if not missing:
        return 0
    # The text the chunk was first embedded from (``Chunk.embedded``): points
    # stored before chunks had a title and headings are embedded from their text.
    vectors = embedder.embed(
        [
            embedded_text(p.payload["text"], p.payload.get("title"), p.payload.get("headings", ()))
            for p in missing
        ]
    )
    target.upsert(
        [
            VectorPoint(id=twins[p.id], vector=vector, payload=p.payload)
            for p, vector in zip(missing, vectors, strict=True)
        ]
    )
    # A document deleted while its chunks were copied: the deletion removes
    # from the active collection first, so whatever is gone there now must go
    # here too (the deletion may have cleared this collection before the copy).
    gone = set(twins) - source.existing(list(twins))
    target.delete([twins[i] for i in gone])
    return len(missing)


def _step_id(reindex_id: UUID, step: str) -> UUID:
    return uuid5(_STEP_NAMESPACE, f"{reindex_id}:{step}")
