"""The read model's tables (SQLAlchemy), and how a document row maps to the fold's state.

The schema changes only with a migration in ``docflow_status/migrations``
(Alembic); a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from docflow_shared.events import ErrorInfo, Event, Stage
from docflow_shared.events.metadata import terms_text
from docflow_shared.sql import UTCDateTime
from docflow_status.domain.projection import DocumentState, Status
from docflow_status.domain.reindexes import ReindexState
from docflow_status.domain.stages import QueueStage
from docflow_status.domain.timeline import timeline_entry

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData()


class DocumentRow(Base):
    """One document's current status."""

    __tablename__ = "documents"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(2000))
    pages: Mapped[int | None] = mapped_column(Integer)
    extract_done: Mapped[int] = mapped_column(Integer)
    extract_total: Mapped[int | None] = mapped_column(Integer)
    ocr_page: Mapped[int | None] = mapped_column(Integer)
    ocr_from: Mapped[int | None] = mapped_column(Integer)
    chunks_extracted: Mapped[int] = mapped_column(Integer)
    chunks_total: Mapped[int | None] = mapped_column(Integer)
    chunks_embedded: Mapped[int] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # One more for each event applied: tells a change from no change (the stream).
    version: Mapped[int] = mapped_column(Integer, server_default="0")
    stalled_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stalled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # When this row last changed, by the projector's clock (the tenant stream's cursor).
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retries: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_note: Mapped[str | None] = mapped_column(String(2000))
    retrying_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_for: Mapped[str | None] = mapped_column(String(16))
    # The upload's metadata, and its terms one per line (``\nkey=value\n``,
    # docflow_shared.events.metadata.terms_text) for the listing's filter.
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    meta_terms: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_documents_tenant_touched", "tenant_id", "touched_at"),)


class ReindexRow(Base):
    """One re-embedding operation's current status (``domain/reindexes.py``)."""

    __tablename__ = "reindexes"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    # The fields of ReindexState, as JSON (read whole, never queried by field).
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @staticmethod
    def state_of(row: ReindexRow) -> ReindexState:
        fields = dict(row.state)
        fields["id"] = UUID(fields["id"])
        for name in ("created_at", "updated_at"):
            fields[name] = datetime.fromisoformat(fields[name])
        return ReindexState(**fields)

    @staticmethod
    def json_of(state: ReindexState) -> dict[str, Any]:
        fields = dict(vars(state))
        fields["id"] = str(state.id)
        for name in ("created_at", "updated_at"):
            fields[name] = fields[name].isoformat()
        return fields


class ProcessedEvent(Base):
    """Every event applied, written in the same transaction as its change."""

    __tablename__ = "processed_events"

    event_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    document_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # What the timeline shows (None for events applied before revision 0002).
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ends_stage: Mapped[bool] = mapped_column(Boolean, server_default=false())

    @staticmethod
    def values_of(event: Event) -> dict[str, Any]:
        """The row that records ``event`` as applied."""
        entry = timeline_entry(event)
        return {
            "event_id": event.event_id,
            "document_id": event.document_id,
            "event_type": event.event_type,
            "attempt": entry.attempt,
            "occurred_at": entry.occurred_at,
            "stage": entry.stage.value if entry.stage else None,
            "error": entry.error.model_dump(mode="json") if entry.error else None,
            "ends_stage": entry.ends_stage,
        }


class UnownedEvent(Base):
    """An event of a document whose upload has not been read yet (``domain/ownership.py``).

    Kept with its body until the upload says whose document it is, then
    applied or rejected in the same transaction; given up (dead-lettered)
    after ``DOCFLOW_UNOWNED_EVENT_TTL_S``. Keyed by tenant too: a forged copy
    of an event must not take the real one's place.
    """

    __tablename__ = "unowned_events"

    event_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    # The event as JSON (docflow_shared.events), read back with parse_any.
    body: Mapped[str] = mapped_column(Text)
    # By the projector's clock: when the sweep gives it up.
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class QueueRecordRow(Base):
    """Where an unfinished document's records wait on a stage's input topic
    (``domain/queues.py``): written by the projector as it reads them, removed
    once the document is finished."""

    __tablename__ = "queue_records"

    document_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    partition: Mapped[int] = mapped_column(Integer)
    # The document's first and last record of the attempt on this topic.
    first_offset: Mapped[int] = mapped_column(BigInteger)
    last_offset: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(Integer, server_default="1")


class OcrRangeRecordRow(Base):
    """Where an unfinished document's OCR ranges wait on docflow.ocr.requested.v1
    (``domain/queues.py``), one row a range: a scan's ranges spread over partitions."""

    __tablename__ = "ocr_range_records"

    document_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    range_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)


class PartitionQueueRow(Base):
    """A stage's consumer group on one partition of its input topic, as the
    projector last measured it (``entrypoints/queues.py``); read by the API."""

    __tablename__ = "partition_queues"

    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    committed: Mapped[int] = mapped_column(BigInteger)
    end_offset: Mapped[int] = mapped_column(BigInteger)
    # When the committed offset last advanced (None: not seen to).
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StageRateRow(Base):
    """A stage's measured throughput (records a second over the whole group,
    while it had work) and records per document (``domain/queues.py``)."""

    __tablename__ = "stage_rates"

    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    rate: Mapped[float | None] = mapped_column(Float)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Columns copied as they are; status, stage and error are converted.
_STATE_FIELDS = [
    column.key
    for column in DocumentRow.__table__.columns
    if column.key
    not in (
        "status",
        "stage",
        "error",
        "version",
        "touched_at",
        "waiting_for",
        "meta",
        "meta_terms",
    )
]


def to_state(row: Any) -> DocumentState:
    """A document row (ORM object or result row) as the fold's state."""
    return DocumentState(
        **{name: getattr(row, name) for name in _STATE_FIELDS},
        status=Status(row.status),
        stage=Stage(row.stage),
        error=ErrorInfo.model_validate(row.error) if row.error else None,
        waiting_for=QueueStage(row.waiting_for) if row.waiting_for else None,
        metadata=row.meta,
    )


def to_row(state: DocumentState, row: DocumentRow) -> DocumentRow:
    """``row`` holding ``state`` (its version and touched_at are the projector's)."""
    for name in _STATE_FIELDS:
        setattr(row, name, getattr(state, name))
    row.status = state.status.value
    row.stage = state.stage.value
    row.error = state.error.model_dump(mode="json") if state.error else None
    row.waiting_for = state.waiting_for.value if state.waiting_for else None
    row.meta = state.metadata
    row.meta_terms = terms_text(state.metadata)
    return row
