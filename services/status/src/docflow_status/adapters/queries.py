"""The read model's queries: the status API's, the stream's, the watchdog's, the metrics'."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, false, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement, Select

from docflow_shared.events import ErrorInfo, Stage
from docflow_shared.sql import Reader
from docflow_status.adapters.tables import DocumentRow, ProcessedEvent, ReindexRow, to_state
from docflow_status.domain.projection import DocumentState, Status
from docflow_status.domain.queries import DocumentQuery, Page
from docflow_status.domain.reindexes import ReindexState
from docflow_status.domain.timeline import TimelineEntry

_DOCUMENTS = DocumentRow.__table__


def _visible(tenant_id: str) -> ColumnElement[bool]:
    return (DocumentRow.tenant_id == tenant_id) & DocumentRow.deleted_at.is_(None)


# The status API's hot path, built once.
_ONE_DOCUMENT = select(_DOCUMENTS).where(
    DocumentRow.id == bindparam("id"),
    DocumentRow.tenant_id == bindparam("tenant"),
    DocumentRow.deleted_at.is_(None),
)


def _entry(row: Any) -> TimelineEntry | None:
    """A processed event's row as a timeline entry (``None`` if applied before revision 0002)."""
    if row.occurred_at is None:
        return None
    return TimelineEntry(
        event_type=row.event_type,
        attempt=row.attempt,
        occurred_at=row.occurred_at,
        stage=Stage(row.stage) if row.stage else None,
        error=ErrorInfo.model_validate(row.error) if row.error else None,
        ends_stage=row.ends_stage,
    )


class SqlQueries:
    """Reads documents, their timelines and re-embedding operations."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Queries for the API, the stream and the watchdog.
        self._read = Reader(engine)

    async def reindex(self, reindex_id: UUID, tenant_id: str) -> ReindexState | None:
        """One re-embedding operation, if ``tenant_id`` asked for it."""
        statement = select(ReindexRow).where(
            ReindexRow.id == reindex_id, ReindexRow.tenant_id == tenant_id
        )

        def query(connection: Connection) -> ReindexState | None:
            row = connection.execute(statement).first()
            if row is None:
                return None
            return ReindexRow.state_of(row)  # type: ignore[arg-type]  # a Row of the columns

        return await self._read(query)

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None:
        """A tenant's document, or ``None``; another tenant's or a deleted one is ``None`` too."""
        found = await self.versioned(document_id, tenant_id)
        return found[1] if found is not None else None

    async def versioned(
        self, document_id: UUID, tenant_id: str
    ) -> tuple[int, DocumentState] | None:
        """A tenant's document with its version, or ``None`` (as ``get``)."""

        def query(connection: Connection) -> tuple[int, DocumentState] | None:
            row = connection.execute(
                _ONE_DOCUMENT, {"id": document_id, "tenant": tenant_id}
            ).first()
            return (row.version, to_state(row)) if row is not None else None

        return await self._read(query)

    async def touched_since(
        self, tenant_id: str, since: datetime, limit: int = 2000
    ) -> list[tuple[int, DocumentState, datetime]]:
        """A tenant's documents changed after ``since`` (deleted ones too), oldest change
        first: (version, state, when it changed)."""
        statement = (
            select(_DOCUMENTS)
            .where(DocumentRow.tenant_id == tenant_id, DocumentRow.touched_at > since)
            .order_by(DocumentRow.touched_at, DocumentRow.id)
            .limit(limit)
        )

        def query(connection: Connection) -> list[tuple[int, DocumentState, datetime]]:
            return [
                (row.version, to_state(row), row.touched_at)
                for row in connection.execute(statement)
            ]

        return await self._read(query)

    async def find(self, tenant_id: str, query: DocumentQuery) -> Page:
        """A tenant's documents, newest first, filtered; at most ``query.limit`` per page."""
        statement = select(_DOCUMENTS).where(_visible(tenant_id))
        if query.status is not None:
            statement = statement.where(DocumentRow.status == query.status.value)
        if query.stage is not None:
            statement = statement.where(DocumentRow.stage == query.stage.value)
        if query.created_from is not None:
            statement = statement.where(DocumentRow.created_at >= query.created_from)
        if query.created_before is not None:
            statement = statement.where(DocumentRow.created_at < query.created_before)
        for terms in query.metadata:
            statement = statement.where(
                or_(*(DocumentRow.meta_terms.contains(f"\n{t}\n", autoescape=True) for t in terms))
            )
        if query.filenames:
            statement = statement.where(DocumentRow.filename.in_(query.filenames))
        if query.document_ids:
            statement = statement.where(DocumentRow.id.in_(query.document_ids))
        if query.after is not None:
            # Keyset pagination: rows strictly after the last one of the previous page.
            created_at, last_id = query.after
            statement = statement.where(
                (DocumentRow.created_at < created_at)
                | ((DocumentRow.created_at == created_at) & (DocumentRow.id < last_id))
            )
        statement = statement.order_by(DocumentRow.created_at.desc(), DocumentRow.id.desc()).limit(
            query.limit + 1
        )
        states = await self._states(statement)
        more = len(states) > query.limit
        states = states[: query.limit]
        last = states[-1] if more else None
        return Page(states, (last.created_at, last.id) if last and last.created_at else None)

    async def counts(self, tenant_id: str) -> dict[Status, int]:
        """How many of a tenant's documents are in each status (every status, zeros too)."""
        statement = (
            select(DocumentRow.status, func.count())
            .where(_visible(tenant_id))
            .group_by(DocumentRow.status)
        )

        def query(connection: Connection) -> dict[Status, int]:
            found = {Status(status): n for status, n in connection.execute(statement)}
            return {status: found.get(status, 0) for status in Status}

        return await self._read(query)

    async def history(self, document_id: UUID, tenant_id: str) -> list[TimelineEntry] | None:
        """What was applied for a tenant's document, in time order; ``None`` if not theirs."""

        def query(connection: Connection) -> list[TimelineEntry] | None:
            visible = connection.scalar(
                select(DocumentRow.id).where((DocumentRow.id == document_id) & _visible(tenant_id))
            )
            if visible is None:
                return None
            rows = connection.execute(
                select(ProcessedEvent.__table__)
                .where(ProcessedEvent.document_id == document_id)
                .order_by(ProcessedEvent.occurred_at, ProcessedEvent.event_id)
            )
            return [entry for row in rows if (entry := _entry(row)) is not None]

        return await self._read(query)

    async def quiet_since(self, cutoff: datetime, limit: int = 500) -> list[DocumentState]:
        """Unfinished documents, not yet known to be stalled, with nothing new since ``cutoff``."""
        return await self._states(
            select(_DOCUMENTS)
            .where(
                DocumentRow.status.in_([Status.PENDING.value, Status.PROCESSING.value]),
                DocumentRow.deleted_at.is_(None),
                DocumentRow.stalled == false(),
                DocumentRow.updated_at < cutoff,
            )
            .order_by(DocumentRow.updated_at)
            .limit(limit)
        )

    async def census(self) -> tuple[dict[Status, int], int]:
        """All tenants' documents by status, and how many are stalled (for metrics)."""
        statement = (
            select(DocumentRow.status, DocumentRow.stalled, func.count())
            .where(DocumentRow.deleted_at.is_(None))
            .group_by(DocumentRow.status, DocumentRow.stalled)
        )

        def query(connection: Connection) -> tuple[dict[Status, int], int]:
            by_status = dict.fromkeys(Status, 0)
            stalled = 0
            for status, is_stalled, count in connection.execute(statement):
                by_status[Status(status)] += count
                stalled += count if is_stalled else 0
            return by_status, stalled

        return await self._read(query)

    async def everything(self) -> list[DocumentState]:
        """Every document, deleted ones too, in id order: to compare two read models."""
        return await self._states(select(_DOCUMENTS).order_by(DocumentRow.id))

    async def _states(self, statement: Select[Any]) -> list[DocumentState]:
        def query(connection: Connection) -> list[DocumentState]:
            return [to_state(row) for row in connection.execute(statement)]

        return await self._read(query)
