"""The tenant's documents as a whole: a filtered listing, page by page, and counts."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from docflow_shared.events import Stage
from docflow_shared.events.metadata import MetadataError, parse_filter
from docflow_shared.filters import MetaFilter
from docflow_shared.http import Problem, Tenant, problem_responses
from docflow_status.domain.projection import Status
from docflow_status.domain.queries import (
    CURSOR_PATTERN,
    DocumentQuery,
    decode_cursor,
    encode_cursor,
)
from docflow_status.entrypoints.deps import DocumentsDep
from docflow_status.entrypoints.problems import UNAUTHORIZED
from docflow_status.entrypoints.routes.documents import DocumentStatus

router = APIRouter()


class DocumentList(BaseModel):
    """One page of a tenant's documents, newest first."""

    documents: list[DocumentStatus]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class DocumentCounts(BaseModel):
    """How many of the tenant's documents are in each status."""

    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    total: int


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    # Pydantic would also take a number of seconds; the schema says date-time.
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise ValueError("expected an RFC 3339 date-time with a time zone")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]

# Values per filter parameter, at most.
MAX_FILTER_VALUES = 100


def _metadata_terms(meta: list[str]) -> tuple[tuple[str, ...], ...]:
    """``key=value`` filters as terms, grouped by key; a 422 naming a malformed one."""
    terms: dict[str, list[str]] = {}
    for text in meta:
        try:
            key, term = parse_filter(text)
        except MetadataError as exc:
            raise Problem(422, "malformed-request", str(exc)) from exc
        terms.setdefault(key, []).append(term)
    return tuple(tuple(values) for values in terms.values())


@router.get(
    "/v1/documents",
    responses=problem_responses(
        {
            401: UNAUTHORIZED,
            422: "A filter is not valid: an unknown status or stage, a time without a zone, "
            "a limit outside 1-500, a cursor not of the form next_cursor has, a `meta` "
            "filter not `key=value`",
        }
    ),
)
async def list_documents(
    documents: DocumentsDep,
    tenant: Tenant,
    status: Status | None = None,
    stage: Stage | None = None,
    created_from: Annotated[
        Instant | None, Query(description="Created at or after (RFC 3339, with a time zone)")
    ] = None,
    created_before: Annotated[
        Instant | None, Query(description="Created before (RFC 3339, with a time zone)")
    ] = None,
    meta: Annotated[
        list[MetaFilter] | None,
        Query(
            max_length=MAX_FILTER_VALUES,
            description="Metadata filter `key=value` (repeatable), as on /v1/search: "
            "different keys must all match, several values of one key are alternatives",
        ),
    ] = None,
    filename: Annotated[
        list[str] | None,
        Query(max_length=MAX_FILTER_VALUES, description="Only documents of this name (repeatable)"),
    ] = None,
    document_id: Annotated[
        list[UUID] | None,
        Query(max_length=MAX_FILTER_VALUES, description="Only these documents (repeatable)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
    ] = None,
) -> DocumentList:
    """The caller's documents, newest first, by status, stage, upload time, metadata,
    name and id."""
    after = decode_cursor(cursor) if cursor else None
    page = await documents.find(
        tenant,
        DocumentQuery(
            status=status,
            stage=stage,
            created_from=created_from,
            created_before=created_before,
            metadata=_metadata_terms(meta or []),
            filenames=tuple(filename or ()),
            document_ids=tuple(document_id or ()),
            limit=limit,
            after=after,
        ),
    )
    return DocumentList(
        documents=[DocumentStatus.of(state) for state in page.documents],
        next_cursor=encode_cursor(page.next) if page.next else None,
    )


@router.get("/v1/documents/counts", responses=problem_responses({401: UNAUTHORIZED}))
async def count_documents(documents: DocumentsDep, tenant: Tenant) -> DocumentCounts:
    """How many of the caller's documents are pending, processing, completed, failed, cancelled."""
    counts = await documents.counts(tenant)
    return DocumentCounts(
        **{status.value: count for status, count in counts.items()}, total=sum(counts.values())
    )
