"""One document: its status, and its timeline of stages and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from docflow_shared.events import ErrorInfo, Stage
from docflow_shared.http import Tenant
from docflow_status.domain.projection import DocumentState, Status
from docflow_status.domain.timeline import stage_spans
from docflow_status.entrypoints.deps import DocumentsDep
from docflow_status.entrypoints.problems import DOCUMENT_PROBLEMS, found

router = APIRouter()


class DocumentStatus(BaseModel):
    """A document's processing status (docs/architecture.md, "Status contract")."""

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
    metadata: dict[str, Any] | None = Field(
        default=None, description="The metadata sent with the upload; null when none was"
    )

    @classmethod
    def of(cls, state: DocumentState) -> DocumentStatus:
        return cls.model_validate(state, from_attributes=True)


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


@router.get(
    "/v1/documents/{document_id}/events",
    responses=DOCUMENT_PROBLEMS,
)
async def document_timeline(document_id: str, documents: DocumentsDep, tenant: Tenant) -> Timeline:
    """Every stage of every attempt (start, end, duration, outcome, error), and its events."""
    parsed, entries = await found(document_id, lambda d: documents.history(d, tenant))
    return Timeline(
        id=parsed,
        stages=[StageSpanOut.model_validate(s, from_attributes=True) for s in stage_spans(entries)],
        events=[TimelineEvent.model_validate(e, from_attributes=True) for e in entries],
    )


@router.get(
    "/v1/documents/{document_id}",
    responses=DOCUMENT_PROBLEMS,
)
async def get_document(document_id: str, documents: DocumentsDep, tenant: Tenant) -> DocumentStatus:
    """A document's status, stage and progress."""
    _, state = await found(document_id, lambda d: documents.get(d, tenant))
    return DocumentStatus.of(state)
