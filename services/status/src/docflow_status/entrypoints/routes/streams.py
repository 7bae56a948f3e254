"""The status streams (Server-Sent Events): a tenant's changes, and one document's.

The read model may be written by another replica (the projector role), so a
stream reads it again every ``DOCFLOW_STREAM_POLL_S`` rather than waiting on
the projector.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header
from pydantic import Field
from sse_starlette import EventSourceResponse

from docflow_shared.http import Tenant
from docflow_status.domain.ports import DocumentReader, QueueViews
from docflow_status.domain.projection import TERMINAL, DocumentState
from docflow_status.entrypoints.deps import (
    DocumentsDep,
    QueuesDep,
    StreamPollDep,
    StreamSlotsDep,
)
from docflow_status.entrypoints.problems import DOCUMENT_PROBLEMS, UNAUTHORIZED, found
from docflow_status.entrypoints.routes.documents import DocumentStatus

router = APIRouter()


class DocumentChange(DocumentStatus):
    """A document's status in the tenant's stream, with its version."""

    version: int = Field(description="One more for each event applied: keep the highest")


LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event (sent by browsers)"),
]

# A change is looked for again this long after the last one sent, in case a
# projector committed it a little later than it stamped it (another replica,
# a slow commit); what was sent already is not sent twice.
STREAM_OVERLAP = timedelta(seconds=2)
# A new stream (no Last-Event-ID) starts with what changed this long ago.
STREAM_LOOKBACK = timedelta(seconds=60)
# An event id is a count of microseconds or a version: at most 18 ASCII digits
# (both fit in a signed 64-bit integer).
MAX_EVENT_ID_DIGITS = 18


def event_number(last_event_id: str | None) -> int | None:
    """The number a Last-Event-ID carries; None (start afresh) for anything that is
    not one of ours: empty, non-ASCII digits such as ``²``, or too long."""
    if (
        not last_event_id
        or len(last_event_id) > MAX_EVENT_ID_DIGITS
        or not (last_event_id.isascii() and last_event_id.isdigit())
    ):
        return None
    return int(last_event_id)


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
        401: {"description": UNAUTHORIZED},
    },
)
async def stream_documents(
    documents: DocumentsDep,
    queues: QueuesDep,
    poll_s: StreamPollDep,
    slots: StreamSlotsDep,
    tenant: Tenant,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Every change to any of the caller's documents, from the last minute on."""
    since = resume_from(last_event_id, datetime.now(UTC))
    changes = slots.hold(
        tenant, _tenant_changes(documents, tenant, since, poll_s=poll_s, queues=queues)
    )
    return EventSourceResponse(changes, ping=15, send_timeout=30)


def resume_from(last_event_id: str | None, now: datetime) -> datetime:
    """Where the tenant's stream starts: after the change ``last_event_id`` names, or
    a minute ago when there is none or it is not one we sent."""
    resumed = event_number(last_event_id)
    if resumed is None:
        return now - STREAM_LOOKBACK
    if resumed > _microseconds(now):
        # A time to come (or past year 9999) would hold every change back.
        return now
    return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=resumed)


def _microseconds(at: datetime) -> int:
    return (at - datetime.fromtimestamp(0, UTC)) // timedelta(microseconds=1)


async def _tenant_changes(
    documents: DocumentReader,
    tenant: str,
    since: datetime,
    *,
    poll_s: float,
    queues: QueueViews | None = None,
) -> AsyncIterator[dict[str, str]]:
    sent: dict[UUID, int] = {}
    cursor = since
    while True:
        changed = await documents.touched_since(tenant, cursor - STREAM_OVERLAP)
        view = await queues.view() if changed and queues is not None else None
        for version, state, touched in changed:
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
            change = DocumentChange(**DocumentStatus.of(state, view).model_dump(), version=version)
            yield {
                "id": str(_microseconds(touched)),
                "event": "status",
                "data": change.model_dump_json(),
            }
        await asyncio.sleep(poll_s)


@router.get(
    "/v1/documents/{document_id}/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: one `status` event (a document status as "
            "JSON, its id the document's version) per change, ending after a terminal status",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **DOCUMENT_PROBLEMS,
    },
)
async def stream_document(
    document_id: str,
    documents: DocumentsDep,
    queues: QueuesDep,
    poll_s: StreamPollDep,
    slots: StreamSlotsDep,
    tenant: Tenant,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """A document's status changes as they happen, resumable with ``Last-Event-ID``."""
    parsed, current = await found(document_id, lambda d: documents.versioned(d, tenant))
    seen = event_number(last_event_id) or 0
    changes = slots.hold(
        tenant, _changes(documents, queues, parsed, tenant, current, seen, poll_s=poll_s)
    )
    return EventSourceResponse(changes, ping=15, send_timeout=30)


async def _changes(
    documents: DocumentReader,
    queues: QueueViews,
    document_id: UUID,
    tenant: str,
    current: tuple[int, DocumentState],
    seen: int,
    *,
    poll_s: float,
) -> AsyncIterator[dict[str, str]]:
    version, state = current
    while True:
        if version > seen:
            yield {
                "id": str(version),
                "event": "status",
                "data": DocumentStatus.of(state, await queues.view()).model_dump_json(),
            }
            seen = version
        if state.status in TERMINAL:
            return
        await asyncio.sleep(poll_s)
        latest = await documents.versioned(document_id, tenant)
        if latest is None:
            yield {"event": "deleted", "data": json.dumps({"id": str(document_id)})}
            return
        version, state = latest
