"""The status API's response bodies: what a client reads of a document and an operation."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from docflow_shared.events import ErrorInfo, Stage
from docflow_status.domain.projection import DocumentState, Status
from docflow_status.domain.reindexes import ReindexState, ReindexStatus


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


class DocumentChange(DocumentStatus):
    """A document's status in the tenant's stream, with its version."""

    version: int = Field(description="One more for each event applied: keep the highest")


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
