"""Upload events for tests: bare, or backed by a file in a real blob store."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from docflow_shared.blobstore import BlobStore, original_key
from docflow_shared.events import ContentType, DocumentUploaded


def an_upload(tenant_id: str = "t1") -> DocumentUploaded:
    """A valid upload event whose blob does not exist."""
    document_id = uuid.uuid4()
    return DocumentUploaded(
        document_id=document_id,
        tenant_id=tenant_id,
        correlation_id=str(uuid.uuid4()),
        filename="a.pdf",
        content_type="application/pdf",
        size_bytes=1,
        sha256="0" * 64,
        blob_key=original_key(tenant_id, document_id),
    )


def stored_upload(
    blobs: BlobStore, path: Path, content_type: ContentType, tenant_id: str = "t1"
) -> DocumentUploaded:
    """``path`` copied into ``blobs``, and the event the gateway would publish for it."""
    document_id = uuid.uuid4()
    key = original_key(tenant_id, document_id)
    data = path.read_bytes()
    with blobs.writer(key) as sink:
        sink.write(data)
    return DocumentUploaded(
        document_id=document_id,
        tenant_id=tenant_id,
        correlation_id=str(uuid.uuid4()),
        filename=path.name,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        blob_key=key,
    )
