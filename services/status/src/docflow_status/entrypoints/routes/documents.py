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
from docflow_status.domain.queues import QueueView, estimate
from docflow_status.domain.stages import QueueStage
from docflow_status.domain.timeline import stage_spans
from docflow_status.entrypoints.deps import DocumentsDep, QueuesDep
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

    waiting_for: QueueStage | None = Field(
        default=None,
        description="The stage the document waits for while no stage works on it: "
        "`extracting` before the extractor starts it, `ocr` while pages the extractor "
        "asked the OCR stage for are not all read (`message` says which, or the page "
        "being read), `embedding` once it is cut and before the embedder's first batch "
        "of it; null while a stage works on it",
    )
    queue_stage: QueueStage | None = Field(
        default=None,
        description="The stage whose queue `queue_position` is about (extracting, ocr "
        "or embedding); null when not known",
    )
    queue_position: int | None = Field(
        default=None,
        ge=0,
        description="Documents ahead of this one at `queue_stage`, from the stage's Kafka "
        'offsets (docs/status.md, "Queue position and estimate"); 0 once the stage has '
        "read it; null when not known (finished, or not measured yet)",
    )
    estimated_completion_at: datetime | None = Field(
        default=None,
        description="When the document should be done, from the measured throughput of "
        "the stages ahead of it; null when not known (finished, a stage not measured yet, "
        "or a stage that does not move)",
    )

    @classmethod
    def of(cls, state: DocumentState, queues: QueueView | None = None) -> DocumentStatus:
        status = cls.model_validate(state, from_attributes=True)
        if queues is None:
            return status
        guess = estimate(state, queues)
        return status.model_copy(
            update={
                "queue_stage": guess.queue_stage,
                "queue_position": guess.queue_position,
                "estimated_completion_at": guess.estimated_completion_at,
            }
        )


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
async def get_document(
    document_id: str, documents: DocumentsDep, queues: QueuesDep, tenant: Tenant
) -> DocumentStatus:
    """A document's status, stage and progress; while it waits or works, its queue
    position and estimated completion."""
    _, state = await found(document_id, lambda d: documents.get(d, tenant))
    return DocumentStatus.of(state, await queues.view())
