"""The status service's HTTP API (DESIGN.md, "Status service")."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field
from sse_starlette import EventSourceResponse

from docflow_shared.events import ErrorInfo, Stage
from docflow_shared.http import Lifespan, Problem, Tenant, problem_responses, service_app
from docflow_shared.probes import Check
from docflow_status.domain.projection import TERMINAL, DocumentState, Status
from docflow_status.domain.queries import (
    CURSOR_PATTERN,
    DocumentQuery,
    Page,
    decode_cursor,
    encode_cursor,
)
from docflow_status.domain.reindexes import ReindexState, ReindexStatus
from docflow_status.domain.timeline import TimelineEntry, stage_spans
from docflow_status.settings import StatusSettings

T = TypeVar("T")


class DocumentReader(Protocol):
    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None: ...

    async def find(self, tenant_id: str, query: DocumentQuery) -> Page: ...

    async def counts(self, tenant_id: str) -> dict[Status, int]: ...

    async def history(self, document_id: UUID, tenant_id: str) -> list[TimelineEntry] | None: ...

    async def versioned(
        self, document_id: UUID, tenant_id: str
    ) -> tuple[int, DocumentState] | None: ...

    async def touched_since(
        self, tenant_id: str, since: datetime, limit: int = ...
    ) -> list[tuple[int, DocumentState, datetime]]: ...

    async def reindex(self, reindex_id: UUID, tenant_id: str) -> ReindexState | None: ...


@dataclass
class StatusApi:
    """Everything the HTTP layer needs, wired by ``bootstrap`` (or by tests)."""

    settings: StatusSettings
    documents: DocumentReader
    checks: Mapping[str, Check]
    registry: CollectorRegistry
    # Starts and stops the schema, the projector's consumer and the engine.
    lifespan: Lifespan | None = None


async def _api(request: Request) -> StatusApi:
    # async: FastAPI runs a plain def dependency in a worker thread, on every request.
    api: StatusApi = request.app.state.status_api
    return api


StatusApiDep = Annotated[StatusApi, Depends(_api)]


class DocumentStatus(BaseModel):
    """A document's processing status (DESIGN.md, ``GET /v1/documents/{id}``)."""

    id: UUID
    filename: str | None
    status: Status
    stage: Stage
    progress: int
    message: str
    pages: int | None
    chunks_total: int | None
    chunks_embedded: int
    error: ErrorInfo | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime | None
    attempt: int = Field(description="1 for the upload, one more for each retry")
    stalled: bool = Field(
        description="No progress for longer than the service's stall limit; "
        "clears when work resumes"
    )
    retries: int = Field(
        default=0,
        description="Retries of this attempt after transient errors (a dependency was "
        "unavailable); `message` says when the next one is while it waits",
    )

    @classmethod
    def of(cls, state: DocumentState) -> DocumentStatus:
        return cls.model_validate(state, from_attributes=True)


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


class StageSpanOut(BaseModel):
    """One stage of one attempt."""

    stage: Stage
    attempt: int
    started_at: datetime
    ended_at: datetime
    duration_s: float
    outcome: str = Field(
        description="completed, failed, cancelled, stopped (the other stage failed) or running"
    )
    error: ErrorInfo | None


class TimelineEvent(BaseModel):
    """An event applied to the document."""

    event_type: str
    attempt: int
    occurred_at: datetime
    stage: Stage | None
    error: ErrorInfo | None


class Timeline(BaseModel):
    """Every stage of every attempt, and the events behind them, in time order."""

    id: UUID
    stages: list[StageSpanOut]
    events: list[TimelineEvent]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    # Pydantic would also take a number of seconds; the schema says date-time.
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise ValueError("expected an RFC 3339 date-time with a time zone")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]

_NOT_FOUND = "No such document for this tenant"

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event (sent by browsers)"),
]
_UNAUTHORIZED = "Authentication is on and no valid API key was sent"


@router.get(
    "/v1/documents",
    responses=problem_responses(
        {
            401: _UNAUTHORIZED,
            422: "A filter is not valid: an unknown status or stage, a time without a zone, "
            "a limit outside 1-500, a cursor not of the form next_cursor has",
        }
    ),
)
async def list_documents(
    api: StatusApiDep,
    tenant: Tenant,
    status: Status | None = None,
    stage: Stage | None = None,
    created_from: Annotated[
        Instant | None, Query(description="Created at or after (RFC 3339, with a time zone)")
    ] = None,
    created_before: Annotated[
        Instant | None, Query(description="Created before (RFC 3339, with a time zone)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
    ] = None,
) -> DocumentList:
    """The caller's documents, newest first, by status, stage and creation time."""
    after = decode_cursor(cursor) if cursor else None
    page = await api.documents.find(
        tenant,
        DocumentQuery(
            status=status,
            stage=stage,
            created_from=created_from,
            created_before=created_before,
            limit=limit,
            after=after,
        ),
    )
    return DocumentList(
        documents=[DocumentStatus.of(state) for state in page.documents],
        next_cursor=encode_cursor(page.next) if page.next else None,
    )


@router.get("/v1/documents/counts", responses=problem_responses({401: _UNAUTHORIZED}))
async def count_documents(api: StatusApiDep, tenant: Tenant) -> DocumentCounts:
    """How many of the caller's documents are pending, processing, completed, failed, cancelled."""
    counts = await api.documents.counts(tenant)
    return DocumentCounts(
        **{status.value: count for status, count in counts.items()}, total=sum(counts.values())
    )


def _not_found(document_id: str) -> Problem:
    return Problem(
        404,
        "document-not-found",
        f"no document {document_id!r}; use the status_url the upload answered with "
        "(a document appears here within moments of its upload being accepted)",
    )


async def _found(document_id: str, lookup: Callable[[UUID], Awaitable[T | None]]) -> tuple[UUID, T]:
    """The id and what ``lookup`` finds for it; 404 for a malformed id or nothing found."""
    try:
        parsed = UUID(document_id)
    except ValueError:
        raise _not_found(document_id) from None
    found = await lookup(parsed)
    if found is None:
        raise _not_found(document_id)
    return parsed, found


_DOCUMENT_PROBLEMS = problem_responses({401: _UNAUTHORIZED, 404: _NOT_FOUND})


class DocumentChange(DocumentStatus):
    """A document's status in the tenant's stream, with its version."""

    version: int = Field(description="One more for each event applied: keep the highest")


# A change is looked for again this long after the last one sent, in case a
# projector committed it a little later than it stamped it (another replica,
# a slow commit); what was sent already is not sent twice.
STREAM_OVERLAP = timedelta(seconds=2)
# A new stream (no Last-Event-ID) starts with what changed this long ago.
STREAM_LOOKBACK = timedelta(seconds=60)


@router.get(
    "/v1/documents/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events, until the client leaves: a `status` event (a "
            "document status with its `version`, as JSON) each time one of the tenant's "
            "documents changes, a `deleted` event when one is deleted. Each event's id is "
            "the time of the change (µs since 1970); send it back as Last-Event-ID to resume. "
            "A document may come twice with one version: keep the highest.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        401: {"description": _UNAUTHORIZED},
    },
)
async def stream_documents(
    api: StatusApiDep,
    tenant: Tenant,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Every change to any of the caller's documents, from the last minute on."""
    if last_event_id and last_event_id.isdigit():
        since = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(last_event_id))
    else:
        since = datetime.now(UTC) - STREAM_LOOKBACK
    return EventSourceResponse(_tenant_changes(api, tenant, since), ping=15, send_timeout=30)


def _microseconds(at: datetime) -> int:
    return (at - datetime.fromtimestamp(0, UTC)) // timedelta(microseconds=1)


async def _tenant_changes(
    api: StatusApi, tenant: str, since: datetime
) -> AsyncIterator[dict[str, str]]:
    sent: dict[UUID, int] = {}
    cursor = since
    while True:
        for version, state, touched in await api.documents.touched_since(
            tenant, cursor - STREAM_OVERLAP
        ):
            cursor = max(cursor, touched)
            if sent.get(state.id, 0) >= version:
                continue
            sent[state.id] = version
            if state.deleted_at is not None:
                yield {
                    "id": str(_microseconds(touched)),
                    "event": "deleted",
                    "data": json.dumps({"id": str(state.id)}),
                }
                continue
            change = DocumentChange(**DocumentStatus.of(state).model_dump(), version=version)
            yield {
                "id": str(_microseconds(touched)),
                "event": "status",
                "data": change.model_dump_json(),
            }
        await asyncio.sleep(api.settings.stream_poll_s)


@router.get(
    "/v1/documents/{document_id}/events",
    responses=_DOCUMENT_PROBLEMS,
)
async def document_timeline(document_id: str, api: StatusApiDep, tenant: Tenant) -> Timeline:
    """Every stage of every attempt (start, end, duration, outcome, error), and its events."""
    parsed, entries = await _found(document_id, lambda d: api.documents.history(d, tenant))
    return Timeline(
        id=parsed,
        stages=[StageSpanOut.model_validate(s, from_attributes=True) for s in stage_spans(entries)],
        events=[TimelineEvent.model_validate(e, from_attributes=True) for e in entries],
    )


@router.get(
    "/v1/documents/{document_id}/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: one `status` event (a document status as "
            "JSON, its id the document's version) per change, ending after a terminal status",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_DOCUMENT_PROBLEMS,
    },
)
async def stream_document(
    document_id: str,
    api: StatusApiDep,
    tenant: Tenant,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """A document's status changes as they happen, resumable with ``Last-Event-ID``."""
    parsed, current = await _found(document_id, lambda d: api.documents.versioned(d, tenant))
    seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return EventSourceResponse(
        _changes(api, parsed, tenant, current, seen), ping=15, send_timeout=30
    )


async def _changes(
    api: StatusApi, document_id: UUID, tenant: str, current: tuple[int, DocumentState], seen: int
) -> AsyncIterator[dict[str, str]]:
    version, state = current
    while True:
        if version > seen:
            yield {
                "id": str(version),
                "event": "status",
                "data": DocumentStatus.of(state).model_dump_json(),
            }
            seen = version
        if state.status in TERMINAL:
            return
        await asyncio.sleep(api.settings.stream_poll_s)
        latest = await api.documents.versioned(document_id, tenant)
        if latest is None:
            yield {"event": "deleted", "data": json.dumps({"id": str(document_id)})}
            return
        version, state = latest


@router.get(
    "/v1/documents/{document_id}",
    responses=_DOCUMENT_PROBLEMS,
)
async def get_document(document_id: str, api: StatusApiDep, tenant: Tenant) -> DocumentStatus:
    """A document's status, stage and progress."""
    _, state = await _found(document_id, lambda d: api.documents.get(d, tenant))
    return DocumentStatus.of(state)


class ReindexOut(BaseModel):
    """A re-embedding operation: how far it got, and whether searches switched."""

    id: UUID
    status: ReindexStatus = Field(
        description="pending (not started by the embedder yet), running, completed, failed"
    )
    backend: str
    model: str
    dimensions: int | None
    documents: int | None = Field(description="How many documents were chosen; null: all")
    source: str | None = Field(description="The collection re-embedded from")
    target: str | None = Field(description="The collection re-embedded into")
    sweep: int = Field(description="1: re-embedding; 2: checking for chunks written meanwhile")
    done: int = Field(description="Chunks of the source read in this pass")
    total: int | None = Field(description="Chunks of the source when the pass began")
    embedded: int = Field(description="Chunks embedded into the target so far")
    progress: int = Field(ge=0, le=100)
    switched: bool = Field(description="Searches and new documents now use the target")
    message: str
    error: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @classmethod
    def of(cls, state: ReindexState) -> ReindexOut:
        return cls.model_validate(vars(state))


@router.get(
    "/v1/reindex/{reindex_id}",
    responses=problem_responses(
        {401: _UNAUTHORIZED, 404: "No such re-embedding operation asked for by this tenant"}
    ),
)
async def get_reindex(reindex_id: str, api: StatusApiDep, tenant: Tenant) -> ReindexOut:
    """A re-embedding operation's progress (``POST /v1/reindex`` on the gateway)."""
    try:
        parsed = UUID(reindex_id)
    except ValueError:
        parsed = None
    state = await api.documents.reindex(parsed, tenant) if parsed else None
    if state is None:
        raise Problem(
            404,
            "reindex-not-found",
            f"no re-embedding {reindex_id!r}; use the status_url POST /v1/reindex answered "
            "with (it appears here within moments)",
        )
    return ReindexOut.of(state)


def create_app(api: StatusApi, *, serve_api: bool = True) -> FastAPI:
    """The status ASGI app around the given wiring; without ``serve_api`` (the
    projector alone) only probes and metrics."""
    app = service_app(
        title="docflow status",
        summary="Where each document is, how far along, and why it failed.",
        router=router if serve_api else APIRouter(),
        checks=api.checks,
        registry=api.registry,
        authenticator=api.settings.authenticator(),
        lifespan=api.lifespan,
        service="status",
    )
    app.state.status_api = api
    # The web page comes from the gateway, another origin: it may read (GET)
    # with the caller's key, and resume a stream with Last-Event-ID.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=api.settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["Authorization", "X-API-Key", "Last-Event-ID"],
    )
    return app
