"""The read model in SQL (SQLAlchemy): SQLite by default, PostgreSQL in production.

The engine comes from ``docflow_shared.sql.create_engine``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Boolean, Integer, MetaData, String, Uuid, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from docflow_shared.events import ErrorInfo, Event, Stage
from docflow_shared.sql import UTCDateTime, migrate
from docflow_status.domain.projection import DocumentState, Fold, Status
from docflow_status.domain.queries import DocumentQuery, Page
from docflow_status.domain.timeline import TimelineEntry, timeline_entry

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData()


class DocumentRow(Base):
    """One document's current status."""

    __tablename__ = "documents"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(2000))
    pages: Mapped[int | None] = mapped_column(Integer)
    extract_done: Mapped[int] = mapped_column(Integer)
    extract_total: Mapped[int | None] = mapped_column(Integer)
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

    @classmethod
    def of(cls, event: Event) -> ProcessedEvent:
        entry = timeline_entry(event)
        return cls(
            event_id=event.event_id,
            document_id=event.document_id,
            event_type=event.event_type,
            attempt=entry.attempt,
            occurred_at=entry.occurred_at,
            stage=entry.stage.value if entry.stage else None,
            error=entry.error.model_dump(mode="json") if entry.error else None,
            ends_stage=entry.ends_stage,
        )

    def entry(self) -> TimelineEntry | None:
        if self.occurred_at is None:
            return None
        return TimelineEntry(
            event_type=self.event_type,
            attempt=self.attempt,
            occurred_at=self.occurred_at,
            stage=Stage(self.stage) if self.stage else None,
            error=ErrorInfo.model_validate(self.error) if self.error else None,
            ends_stage=self.ends_stage,
        )


# Columns copied as they are; status, stage and error are converted.
_STATE_FIELDS = [
    column.key
    for column in DocumentRow.__table__.columns
    if column.key not in ("status", "stage", "error", "version")
]


def _to_state(row: DocumentRow) -> DocumentState:
    return DocumentState(
        **{name: getattr(row, name) for name in _STATE_FIELDS},
        status=Status(row.status),
        stage=Stage(row.stage),
        error=ErrorInfo.model_validate(row.error) if row.error else None,
    )


def _to_row(state: DocumentState, row: DocumentRow) -> DocumentRow:
    for name in _STATE_FIELDS:
        setattr(row, name, getattr(state, name))
    row.status = state.status.value
    row.stage = state.stage.value
    row.error = state.error.model_dump(mode="json") if state.error else None
    return row


class SqlReadModel:
    """Applies events to the documents table exactly once each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def migrate(self) -> None:
        """Create or update the tables (Alembic migrations in ``docflow_status/migrations``)."""
        await migrate(self.engine, MIGRATIONS, Base.metadata, "status")

    async def apply(self, event: Event, fold: Fold) -> bool:
        """Fold ``event`` into its document; ``False`` if it was applied before.

        Delivery is at-least-once, so the same event can arrive twice (a
        redelivery after a crash before the offset commit). Recording its id
        in the same transaction as the change makes applying it idempotent:
        either both are written or neither is.
        """
        try:
            async with self._sessions.begin() as session:
                if await session.get(ProcessedEvent, event.event_id) is not None:
                    return False
                row = await session.get(DocumentRow, event.document_id)
                state = fold(_to_state(row) if row is not None else None, event)
                if row is None:
                    session.add(_to_row(state, DocumentRow(version=1)))
                else:
                    _to_row(state, row)
                    row.version += 1
                session.add(ProcessedEvent.of(event))
        except IntegrityError:
            # Another transaction applied the same event first.
            return False
        return True

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None:
        """A tenant's document, or ``None``; another tenant's or a deleted one is ``None`` too."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(DocumentRow).where(
                    DocumentRow.id == document_id,
                    DocumentRow.tenant_id == tenant_id,
                    DocumentRow.deleted_at.is_(None),
                )
            )
            return _to_state(row) if row is not None else None

    async def versioned(
        self, document_id: UUID, tenant_id: str
    ) -> tuple[int, DocumentState] | None:
        """A tenant's document with its version, or ``None`` (as ``get``)."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(DocumentRow).where(
                    (DocumentRow.id == document_id) & self._visible(tenant_id)
                )
            )
            return (row.version, _to_state(row)) if row is not None else None

    def _visible(self, tenant_id: str) -> Any:
        return (DocumentRow.tenant_id == tenant_id) & DocumentRow.deleted_at.is_(None)

    async def find(self, tenant_id: str, query: DocumentQuery) -> Page:
        """A tenant's documents, newest first, filtered; at most ``query.limit`` per page."""
        statement = select(DocumentRow).where(self._visible(tenant_id))
        if query.status is not None:
            statement = statement.where(DocumentRow.status == query.status.value)
        if query.stage is not None:
            statement = statement.where(DocumentRow.stage == query.stage.value)
        if query.created_from is not None:
            statement = statement.where(DocumentRow.created_at >= query.created_from)
        if query.created_before is not None:
            statement = statement.where(DocumentRow.created_at < query.created_before)
        if query.after is not None:
            # Keyset pagination: rows strictly after the last one of the previous page.
            created_at, last_id = query.after
            statement = statement.where(
                (DocumentRow.created_at < created_at)
                | ((DocumentRow.created_at == created_at) & (DocumentRow.id < last_id))
            )
        statement = statement.order_by(DocumentRow.created_at.desc(), DocumentRow.id.desc())
        async with self._sessions() as session:
            rows = list(await session.scalars(statement.limit(query.limit + 1)))
        states = [_to_state(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        last = states[-1] if more else None
        return Page(states, (last.created_at, last.id) if last and last.created_at else None)

    async def counts(self, tenant_id: str) -> dict[Status, int]:
        """How many of a tenant's documents are in each status (every status, zeros too)."""
        statement = (
            select(DocumentRow.status, func.count())
            .where(self._visible(tenant_id))
            .group_by(DocumentRow.status)
        )
        async with self._sessions() as session:
            found = {Status(status): count for status, count in await session.execute(statement)}
        return {status: found.get(status, 0) for status in Status}

    async def history(self, document_id: UUID, tenant_id: str) -> list[TimelineEntry] | None:
        """What was applied for a tenant's document, in time order; ``None`` if not theirs."""
        async with self._sessions() as session:
            visible = await session.scalar(
                select(DocumentRow.id).where(
                    (DocumentRow.id == document_id) & self._visible(tenant_id)
                )
            )
            if visible is None:
                return None
            rows = await session.scalars(
                select(ProcessedEvent)
                .where(ProcessedEvent.document_id == document_id)
                .order_by(ProcessedEvent.occurred_at, ProcessedEvent.event_id)
            )
            return [entry for row in rows if (entry := row.entry()) is not None]

    async def everything(self) -> list[DocumentState]:
        """Every document, deleted ones too, in id order: to compare two read models."""
        async with self._sessions() as session:
            rows = await session.scalars(select(DocumentRow).order_by(DocumentRow.id))
            return [_to_state(row) for row in rows]

    async def check(self) -> None:
        """Raises unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
