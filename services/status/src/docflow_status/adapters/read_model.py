"""The read model in SQL (SQLAlchemy): SQLite by default, PostgreSQL in production.

The engine comes from ``docflow_shared.sql.create_engine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    MetaData,
    String,
    Uuid,
    bindparam,
    delete,
    event,
    false,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import ColumnElement, Select

from docflow_shared.events import ErrorInfo, Event, ReindexEvent, Stage
from docflow_shared.sql import Reader, UTCDateTime, create_engine, migrate
from docflow_status.domain.projection import TERMINAL, DocumentState, Fold, Projected, Status
from docflow_status.domain.queries import DocumentQuery, Page
from docflow_status.domain.reindexes import ReindexState
from docflow_status.domain.reindexes import evolve as evolve_reindex
from docflow_status.domain.timeline import TimelineEntry, timeline_entry

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

# How often a batch is read again after another writer got in first.
_CONFLICT_RETRIES = 3


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
    stalled_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stalled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # When this row last changed, by the projector's clock (the tenant stream's cursor).
    touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retries: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_note: Mapped[str | None] = mapped_column(String(2000))
    retrying_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

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


# Columns copied as they are; status, stage and error are converted.
_STATE_FIELDS = [
    column.key
    for column in DocumentRow.__table__.columns
    if column.key not in ("status", "stage", "error", "version", "touched_at")
]


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


def _to_state(row: Any) -> DocumentState:
    """A document row (ORM object or result row) as the fold's state."""
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
        # Queries for the API, the stream and the watchdog.
        self._read = Reader(engine)

    async def migrate(self) -> None:
        """Create or update the tables (Alembic migrations in ``docflow_status/migrations``)."""
        await migrate(self.engine, MIGRATIONS, Base.metadata, "status")

    async def apply(self, event: Event, fold: Fold) -> bool:
        """Fold one event into its document; ``False`` if it was applied before."""
        return (await self.apply_all([event], fold)).applied == 1

    async def apply_all(self, events: Sequence[Event], fold: Fold) -> Projected:
        """Fold a batch of events into their documents, in order, in one transaction.

        Delivery is at-least-once, so an event can arrive twice (a redelivery
        after a crash before the offset commit). Recording each applied
        ``event_id`` in the same transaction as the change makes applying it
        idempotent: the batch's changes and its ids are written together or
        not at all, and an id found among those already applied is skipped.

        One transaction per batch, not per event: the ids are checked in one
        query and each document is read and written once.
        """
        for _ in range(_CONFLICT_RETRIES):
            try:
                return await self._apply_all(events, fold)
            except IntegrityError:
                # Another replica (a rebalance in progress) applied some of
                # these events or created one of the documents first: read again.
                continue
        return await self._apply_all(events, fold)

    async def _apply_all(self, events: Sequence[Event], fold: Fold) -> Projected:
        # The first of events with one id, as when they come in separate batches:
        # an event published again after a crash (DocumentIndexed, whose id is
        # per attempt) can differ from its first copy in occurred_at.
        unique: list[Event] = []
        kept: set[UUID] = set()
        for one in events:
            if one.event_id not in kept:
                kept.add(one.event_id)
                unique.append(one)
        if not unique:
            return Projected(0, {})
        async with self._sessions.begin() as session:
            seen = set(
                await session.scalars(
                    select(ProcessedEvent.event_id).where(
                        ProcessedEvent.event_id.in_([e.event_id for e in unique])
                    )
                )
            )
            rows = {
                row.id: row
                for row in await session.scalars(
                    select(DocumentRow).where(DocumentRow.id.in_({e.document_id for e in unique}))
                )
            }
            states = {document_id: _to_state(row) for document_id, row in rows.items()}
            fresh = [event for event in unique if event.event_id not in seen]
            changes: dict[UUID, int] = {}
            was_terminal = {
                e.document_id: e.document_id in states and states[e.document_id].status in TERMINAL
                for e in fresh
            }
            for event in fresh:
                states[event.document_id] = fold(states.get(event.document_id), event)
                changes[event.document_id] = changes.get(event.document_id, 0) + 1
            touched = datetime.now(UTC)
            for document_id, count in changes.items():
                row = rows.get(document_id)
                if row is None:
                    row = rows[document_id] = DocumentRow(version=0)
                    session.add(row)
                _to_row(states[document_id], row)
                row.version += count
                row.touched_at = touched
            if fresh:
                await session.execute(
                    insert(ProcessedEvent), [ProcessedEvent.values_of(e) for e in fresh]
                )
        return Projected(
            len(fresh),
            {
                document_id: (rows[document_id].version, state)
                for document_id, state in states.items()
            },
            finished=[
                states[document_id]
                for document_id, terminal in was_terminal.items()
                if not terminal and states[document_id].status in TERMINAL
            ],
        )

    async def apply_reindexes(self, events: Sequence[ReindexEvent]) -> None:
        """Fold re-embedding events into their operations' rows, in one transaction.

        The fold is idempotent, so a redelivered event needs no bookkeeping.
        """
        if not events:
            return
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                async with self._sessions.begin() as session:
                    rows = {
                        row.id: row
                        for row in await session.scalars(
                            select(ReindexRow).where(
                                ReindexRow.id.in_({e.reindex_id for e in events})
                            )
                        )
                    }
                    states = {i: ReindexRow.state_of(row) for i, row in rows.items()}
                    for event in events:
                        states[event.reindex_id] = evolve_reindex(
                            states.get(event.reindex_id), event
                        )
                    for reindex_id, state in states.items():
                        row = rows.get(reindex_id)
                        if row is None:
                            row = ReindexRow(id=reindex_id)
                            session.add(row)
                        row.tenant_id = state.tenant_id
                        row.state = ReindexRow.json_of(state)
                        row.updated_at = state.updated_at
                return
            except IntegrityError:
                # Another replica created the row first: read again.
                if attempt == _CONFLICT_RETRIES:
                    raise

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
            return (row.version, _to_state(row)) if row is not None else None

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
                (row.version, _to_state(row), row.touched_at)
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
            return [_to_state(row) for row in connection.execute(statement)]

        return await self._read(query)

    async def check(self) -> None:
        """Raises unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        """Close every connection."""
        self._read.close()
        await self.engine.dispose()


# Where a rebuild folds the replayed events: a schema of its own (PostgreSQL),
# or a database file attached under that name (SQLite).
REBUILD_SCHEMA = "status_rebuild"


class Rebuild:
    """A fresh read model beside the live one, and the swap that makes it live.

    The replay is folded into tables of their own (``REBUILD_SCHEMA``) while
    the service keeps answering from the live ones; ``swap_in`` then replaces
    the live rows by the rebuilt ones in one transaction, so readers see the
    old model or the new one, never a mix.
    """

    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._sqlite_file: Path | None = None
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            live = Path(self._url.database or "")
            self._sqlite_file = live.with_name(live.name + ".rebuild")

            @event.listens_for(self.engine.sync_engine, "connect")
            def _attach(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute(
                    f"ATTACH DATABASE ? AS {REBUILD_SCHEMA}", (str(self._sqlite_file),)
                )

        # The rebuilt model: the read model's own code, on the rebuild's tables.
        self.model = SqlReadModel(
            self.engine.execution_options(schema_translate_map={None: REBUILD_SCHEMA})
        )

    async def start(self) -> None:
        """Empty rebuild tables, whatever an interrupted rebuild left."""
        async with self.engine.begin() as connection:
            if self._sqlite_file is None:
                await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {REBUILD_SCHEMA}"))
            translated = await connection.execution_options(
                schema_translate_map={None: REBUILD_SCHEMA}
            )
            await translated.run_sync(Base.metadata.drop_all)
            await translated.run_sync(Base.metadata.create_all)

    async def swap_in(self) -> None:
        """Replace the live read model's rows by the rebuilt ones, in one transaction."""
        rebuilt = MetaData(schema=REBUILD_SCHEMA)
        async with self.engine.begin() as connection:
            # Children first out, parents first in (no foreign keys today; kept tidy).
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
            for table in Base.metadata.sorted_tables:
                source = table.to_metadata(rebuilt)
                columns = [column.name for column in table.columns]
                await connection.execute(
                    insert(table).from_select(columns, select(*source.columns))
                )

    async def close(self) -> None:
        """Drop the rebuild tables and close every connection."""
        async with self.engine.begin() as connection:
            translated = await connection.execution_options(
                schema_translate_map={None: REBUILD_SCHEMA}
            )
            await translated.run_sync(Base.metadata.drop_all)
        await self.model.close()
        await self.engine.dispose()
        if self._sqlite_file is not None:
            self._sqlite_file.unlink(missing_ok=True)
