"""Accepting uploads: store each file, then announce it on Kafka.

A document exists for the rest of docflow only once its
``DocumentUploaded`` event is acknowledged by Kafka (acks=all); a file whose
event is not acknowledged is removed again, so nothing is left behind that no
event points to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO
from uuid import UUID, uuid4

from anyio import to_thread

from docflow_gateway.domain.files import FileInspector
from docflow_shared.blobstore import BlobStore, original_key
from docflow_shared.events import DocumentUploaded
from docflow_shared.messaging import Publish

logger = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class IncomingFile:
    """One ``file`` part of an upload request, already received."""

    filename: str
    content: BinaryIO


class PublishError(Exception):
    """Kafka did not acknowledge some uploads; those were not kept."""

    def __init__(self, accepted: list[DocumentUploaded], failed: list[str]) -> None:
        super().__init__(f"Kafka did not acknowledge {len(failed)} upload(s)")
        self.accepted = accepted
        self.failed = failed


def _store(file: IncomingFile, blobs: BlobStore, key: str) -> FileInspector:
    """Copy a file into the blob store, inspecting its bytes on the way."""
    inspector = FileInspector()
    with blobs.writer(key) as sink:
        while data := file.content.read(COPY_CHUNK_BYTES):
            inspector.feed(data)
            sink.write(data)
    return inspector


async def accept_uploads(
    files: Sequence[IncomingFile],
    *,
    tenant_id: str,
    correlation_id: str,
    blobs: BlobStore,
    publish: Publish,
) -> list[DocumentUploaded]:
    """Store and announce every file; all or nothing for rejected files.

    Raises ``UnsupportedFileError``/``EmptyFileError`` naming the first bad file
    (and keeps none of the request's files), or ``PublishError`` when Kafka did
    not acknowledge some of them (those are removed; the rest are accepted).
    """
    stored: list[DocumentUploaded] = []
    try:
        for file in files:
            document_id: UUID = uuid4()
            key = original_key(tenant_id, document_id)
            inspector = await to_thread.run_sync(_store, file, blobs, key)
            try:
                content_type = inspector.content_type(file.filename)
            except ValueError:
                blobs.delete(key)
                raise
            stored.append(
                DocumentUploaded(
                    document_id=document_id,
                    tenant_id=tenant_id,
                    correlation_id=correlation_id,
                    filename=file.filename,
                    content_type=content_type,
                    size_bytes=inspector.size,
                    sha256=inspector.sha256,
                    blob_key=key,
                )
            )
    except BaseException:
        for event in stored:
            blobs.delete(event.blob_key)
        raise

    results = await asyncio.gather(*(publish(event) for event in stored), return_exceptions=True)
    accepted, failed = [], []
    for event, result in zip(stored, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("Kafka did not acknowledge upload %s: %s", event.document_id, result)
            blobs.delete(event.blob_key)
            failed.append(event.filename)
        else:
            accepted.append(event)
    if failed:
        raise PublishError(accepted, failed)
    return accepted
