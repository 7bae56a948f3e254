"""One document: its status, and its timeline of stages and events."""

from __future__ import annotations

from fastapi import APIRouter

from docflow_shared.http import Tenant
from docflow_status.domain.timeline import stage_spans
from docflow_status.entrypoints.http.deps import Documents
from docflow_status.entrypoints.http.problems import DOCUMENT_PROBLEMS, found
from docflow_status.entrypoints.http.schemas import (
    DocumentStatus,
    StageSpanOut,
    Timeline,
    TimelineEvent,
)

router = APIRouter()


@router.get(
    "/v1/documents/{document_id}/events",
    responses=DOCUMENT_PROBLEMS,
)
async def document_timeline(document_id: str, documents: Documents, tenant: Tenant) -> Timeline:
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
async def get_document(document_id: str, documents: Documents, tenant: Tenant) -> DocumentStatus:
    """A document's status, stage and progress."""
    _, state = await found(document_id, lambda d: documents.get(d, tenant))
    return DocumentStatus.of(state)
