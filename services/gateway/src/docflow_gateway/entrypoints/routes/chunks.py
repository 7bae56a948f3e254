"""``GET /v1/documents/{id}/chunks``: what was extracted from a document, read back
a page at a time (issue 22: people need to see what OCR made of their scan).

The chunks come from the extractor's chunk log in the blob store
(``blobstore.chunks_key``: one ``Chunk`` per line, in index order, made visible
whole once an extraction finishes, and kept for re-embedding), not from
Qdrant: the log holds every chunk of the last finished extraction, whether or
not it was embedded yet (Qdrant holds only those embedded, in the current
model's collection). The document is the caller's (the registry, 404
otherwise) and its log's key is made from that record's tenant and id, never
from the request.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, ValidationError

from docflow_gateway.entrypoints.deps import BlobsDep
from docflow_gateway.entrypoints.problems import unavailable
from docflow_gateway.entrypoints.routes.documents import OwnDocument
from docflow_shared.blobstore import BlobNotFoundError, BlobStore, chunks_key
from docflow_shared.events import Chunk
from docflow_shared.http import problem_responses

logger = logging.getLogger(__name__)
router = APIRouter()

CURSOR_PATTERN = r"^[0-9]{1,10}$"


class ChunkOut(BaseModel):
    index: int = Field(description="The chunk's place in the document, from 0")
    text: str
    page: int | None = Field(description="The page it starts on (paginated files); null for text")
    page_end: int | None = Field(description="The page it ends on; null for text")


class ChunkPage(BaseModel):
    """One page of a document's chunks, in order."""

    id: str
    extracted: bool = Field(
        description="False while no extraction of the document has finished (no chunks yet)"
    )
    chunks: list[ChunkOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


def read_page(blobs: BlobStore, key: str, after: int | None, limit: int) -> list[Chunk] | None:
    """Up to ``limit`` + 1 chunks of the log at ``key`` with an index past ``after``;
    None when there is no log (no extraction finished)."""
    try:
        log = blobs.open(key)
    except BlobNotFoundError:
        return None
    found: list[Chunk] = []
    with log:
        for number, line in enumerate(log, 1):
            try:
                chunk = Chunk.model_validate_json(line)
            except ValidationError:
                logger.warning("chunk log %s: line %d is not a chunk; skipped", key, number)
                continue
            if after is None or chunk.index > after:
                found.append(chunk)
                if len(found) > limit:
                    break
    return found


@router.get(
    "/v1/documents/{document_id}/chunks",
    description="The chunks extracted from one of the tenant's documents (the text that is\n"
    "embedded and searched), in order, a page at a time.",
    responses=problem_responses(
        {
            401: "Authentication is on and no valid API key was sent",
            404: "No such document for this tenant",
            422: "Malformed request: an id that is not a UUID, a limit outside 1-500, a "
            "cursor not of the form next_cursor has",
            429: "The tenant sent too many requests; see Retry-After",
            503: "The blob store is unavailable; retry after Retry-After",
        }
    ),
)
async def document_chunks(
    record: OwnDocument,
    blobs: BlobsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
    ] = None,
) -> ChunkPage:
    """The document's chunks after ``cursor``, ``limit`` of them."""
    key = chunks_key(record.tenant_id, record.id)
    after = int(cursor) if cursor else None
    try:
        found = await to_thread.run_sync(partial(read_page, blobs, key, after, limit))
    except (ConnectionError, OSError) as exc:
        raise unavailable("the blob store", exc) from exc
    chunks = (found or [])[:limit]
    more = found is not None and len(found) > limit
    return ChunkPage(
        id=str(record.id),
        extracted=found is not None,
        chunks=[
            ChunkOut(index=c.index, text=c.text, page=c.page, page_end=c.page_end) for c in chunks
        ],
        next_cursor=str(chunks[-1].index) if more else None,
    )
