"""Accepting uploads: check what was received, then announce it on Kafka.

A document exists for the rest of docflow only once its ``DocumentUploaded``
event is acknowledged by Kafka (acks=all). A request is all or nothing: one
file that is empty or not a document rejects the request and none of its
files is kept; a file whose event Kafka does not acknowledge is removed
again (no blob is left that no event points to), and the request's other
files, already announced, are withdrawn with ``DocumentDeleted``.

With content dedup on, a file whose bytes the tenant already uploaded is not
stored again: the answer points at the existing document. The document is
recorded only after its event is acknowledged, so the content index never
points at a document that does not exist; two identical uploads racing each
other may both be accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from anyio import to_thread

from docflow_gateway.adapters.registry import DocumentRecord, SqlRegistry
from docflow_gateway.domain.files import TEXT_TYPES, ReceivedFile
from docflow_shared.blobstore import BlobStore
from docflow_shared.events import ContentType, DocumentDeleted, DocumentUploaded
from docflow_shared.events.metadata import Value
from docflow_shared.messaging import Publish

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one file of a request."""

    document_id: UUID
    filename: str
    content_type: ContentType
    size_bytes: int
    sha256: str
    # The file's bytes were already a document of this tenant: this is that one.
    duplicate: bool = False


class PublishError(Exception):
    """Kafka did not acknowledge some uploads; those were not kept."""

    def __init__(self, accepted: list[Outcome], failed: list[str]) -> None:
        super().__init__(f"Kafka did not acknowledge {len(failed)} upload(s)")
        self.accepted = accepted
        self.failed = failed


async def _delete(blobs: BlobStore, keys: Sequence[str]) -> None:
    for key in keys:
        await to_thread.run_sync(blobs.delete, key)


def _existing(record: DocumentRecord) -> Outcome:
    return Outcome(
        document_id=record.id,
        filename=record.filename,
        content_type=record.content_type,  # type: ignore[arg-type]
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        duplicate=True,
    )


def _new(event: DocumentUploaded) -> Outcome:
    return Outcome(
        document_id=event.document_id,
        filename=event.filename,
        content_type=event.content_type,
        size_bytes=event.size_bytes,
        sha256=event.sha256,
    )


async def accept_uploads(
    files: Sequence[ReceivedFile],
    *,
    tenant_id: str,
    correlation_id: str,
    dedup: bool,
    blobs: BlobStore,
    registry: SqlRegistry,
    publish: Publish,
    metadata: dict[str, Value] | None = None,
) -> list[Outcome]:
    """Announce every received file (already in the blob store), in request order.

    Raises ``UnsupportedFileError``/``EmptyFileError`` naming the first bad
    file (and keeps none of the request's files), or ``PublishError`` when
    Kafka did not acknowledge some of them: those are removed, and the others
    are withdrawn again with ``DocumentDeleted`` (any that cannot be are
    named in the error as kept).

    ``metadata`` goes with every new document of the request; a duplicate keeps
    the metadata it was first uploaded with.
    """
    try:
        types = [file.inspector.content_type(file.filename) for file in files]
        outcomes: list[Outcome | DocumentUploaded] = []
        seen: dict[str, Outcome] = {}
        for file, content_type in zip(files, types, strict=True):
            sha256 = file.inspector.sha256
            earlier = seen.get(sha256) if dedup else None
            if dedup and earlier is None:
                record = await registry.by_content(tenant_id, sha256)
                earlier = _existing(record) if record is not None else None
            if earlier is not None:
                outcomes.append(earlier if earlier.duplicate else _as_duplicate(earlier))
                continue
            event = DocumentUploaded(
                document_id=file.document_id,
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                filename=file.filename,
                content_type=content_type,
                charset=file.inspector.charset() if content_type in TEXT_TYPES else None,
                size_bytes=file.inspector.size,
                sha256=sha256,
                blob_key=file.blob_key,
                metadata=metadata or None,
            )
            outcomes.append(event)
            seen[sha256] = _new(event)
    except BaseException:
        await _delete(blobs, [file.blob_key for file in files])
        raise

    # Duplicates' bytes are not kept: the existing document has them.
    new_keys = {o.blob_key for o in outcomes if isinstance(o, DocumentUploaded)}
    await _delete(blobs, [f.blob_key for f in files if f.blob_key not in new_keys])

    events = [o for o in outcomes if isinstance(o, DocumentUploaded)]
    results = await asyncio.gather(*(publish(event) for event in events), return_exceptions=True)
    failed: list[DocumentUploaded] = []
    announced: list[DocumentUploaded] = []
    for event, result in zip(events, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("Kafka did not acknowledge upload %s: %s", event.document_id, result)
            failed.append(event)
        else:
            announced.append(event)
    await _delete(blobs, [event.blob_key for event in failed])
    if failed:
        # All or nothing: the files Kafka did take are withdrawn again.
        kept = await _withdraw(announced, blobs=blobs, publish=publish)
        for event in kept:
            await _record(registry, event, dedup=dedup)
        raise PublishError([_new(event) for event in kept], [event.filename for event in failed])
    for event in announced:
        await _record(registry, event, dedup=dedup)
    return [_new(o) if isinstance(o, DocumentUploaded) else o for o in outcomes]


async def _withdraw(
    events: Sequence[DocumentUploaded], *, blobs: BlobStore, publish: Publish
) -> list[DocumentUploaded]:
    """Delete announced documents of a request that failed; those that could not be, kept."""
    kept = []
    for event in events:
        try:
            await publish(DocumentDeleted.caused_by(event))
        except Exception as exc:
            logger.error("could not withdraw upload %s: %s", event.document_id, exc)
            kept.append(event)
        else:
            await _delete(blobs, [event.blob_key])
    return kept


def _as_duplicate(outcome: Outcome) -> Outcome:
    return Outcome(**{**outcome.__dict__, "duplicate": True})


async def _record(registry: SqlRegistry, event: DocumentUploaded, *, dedup: bool) -> None:
    """Record an acknowledged document; its event stands even if this fails."""
    try:
        if await registry.add(DocumentRecord.of(event, dedup=dedup)) is None:
            # The same bytes were recorded by a concurrent upload: keep this
            # document, outside the content index.
            await registry.add(DocumentRecord.of(event, dedup=False))
    except Exception:
        logger.exception(
            "document %s was accepted but could not be recorded; "
            "it is processed, but dedup and operations will not find it",
            event.document_id,
        )
