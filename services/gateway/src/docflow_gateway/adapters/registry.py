"""The gateway's own records in SQL: accepted documents and idempotency keys.

SQLite under the data directory by default; PostgreSQL (``DOCFLOW_DATABASE_URL``)
when several gateway replicas run, so that they share idempotency keys and
the content index.

* ``documents``: every accepted document with its tenant and sha256. With
  content dedup on, ``content_key`` (tenant and sha256) is unique, so two
  concurrent uploads of the same bytes cannot both become new documents.
* ``idempotency_keys``: a key is claimed before the upload is announced and
  holds the answer once it is; a failed upload releases it.

A document's row also holds what its operations claimed (``operations.py``):
the latest attempt a retry started, the latest one a cancel stopped, and
whether a delete began. Each claim is one conditional UPDATE (compare and
set), so of concurrent retries of one attempt exactly one wins.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    String,
    Uuid,
    delete,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from docflow_shared.events import DocumentUploaded
from docflow_shared.sql import UTCDateTime, migrate

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData()


class DocumentRecord(Base):
    """A document the gateway accepted (its uploaded event was acknowledged)."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_tenant_sha256", "tenant_id", "sha256"),)

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    # "<tenant>:<sha256>" when uploaded with dedup on, else NULL (NULLs never collide).
    content_key: Mapped[str | None] = mapped_column(String(130), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    charset: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Claimed by the operations (compare and set): the latest attempt a retry
    # started (the upload's is 1), the latest a cancel stopped, a delete begun.
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    stopped_attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    deleting: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The upload's metadata (a retry carries it to the chunks again); NULL: none.
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @classmethod
    def of(cls, event: DocumentUploaded, *, dedup: bool) -> DocumentRecord:
        return cls(
            id=event.document_id,
            tenant_id=event.tenant_id,
            sha256=event.sha256,
            content_key=f"{event.tenant_id}:{event.sha256}" if dedup else None,
            filename=event.filename,
            content_type=event.content_type,
            charset=event.charset,
            size_bytes=event.size_bytes,
            blob_key=event.blob_key,
            created_at=event.occurred_at,
            attempt=1,
            stopped_attempt=0,
            deleting=False,
            meta=event.metadata,
        )


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` a tenant used, the request it came with, and the answer."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request is still being handled.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeyState(enum.Enum):
    CLAIMED = "claimed"  # first use: go ahead, then complete or release it
    REPLAY = "replay"  # used before with the same request: answer as then
    MISMATCH = "mismatch"  # used before with a different request
    IN_PROGRESS = "in_progress"  # the first request with this key is still running


@dataclass(frozen=True)
class KeyClaim:
    state: KeyState
    status_code: int | None = None
    response: dict[str, Any] | None = None


class SqlRegistry:
    """Documents and idempotency keys of every tenant."""

    def __init__(self, engine: AsyncEngine, *, key_ttl: timedelta = timedelta(hours=24)) -> None:
        self.engine = engine
        self.key_ttl = key_ttl
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time. Concurrent write transactions from
        # the pool's connections would wait on its lock by sleeping and trying
        # again, unfairly: 16 concurrent uploads saw waits of up to 3 s
        # (bench/upload_latency.py). Taking turns here costs nothing SQLite
        # would not serialize anyway. PostgreSQL needs no such turns.
        self._one_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def writing(self) -> AbstractAsyncContextManager[None]:
        """This process's turn to write (SQLite); for other writers to the same database."""
        return self._writing()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._one_writer is None:
            yield
            return
        async with self._one_writer:
            yield

    async def migrate(self) -> None:
        """Create or update the tables (Alembic migrations in ``docflow_gateway/migrations``)."""
        await migrate(self.engine, MIGRATIONS, Base.metadata, "gateway")

    async def check(self) -> None:
        """Readiness: raises unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    # -- documents ---------------------------------------------------------

    async def by_content(self, tenant_id: str, sha256: str) -> DocumentRecord | None:
        """The tenant's earliest document with these bytes, if any."""
        async with self._sessions() as session:
            return await session.scalar(
                select(DocumentRecord)
                .where(DocumentRecord.tenant_id == tenant_id, DocumentRecord.sha256 == sha256)
                .order_by(DocumentRecord.created_at)
                .limit(1)
            )

    async def add(self, record: DocumentRecord) -> DocumentRecord | None:
        """Record a new document; with dedup, ``None`` if its content was recorded meanwhile."""
        values = {c.key: getattr(record, c.key) for c in DocumentRecord.__table__.columns}
        try:
            # A Core insert: one statement per upload, without the ORM's unit of work.
            async with self._writing(), self.engine.begin() as connection:
                await connection.execute(insert(DocumentRecord), [values])
        except IntegrityError:
            return None
        return record

    async def remove(self, document_ids: Sequence[UUID]) -> None:
        if document_ids:
            async with self._writing(), self._sessions.begin() as session:
                await session.execute(
                    delete(DocumentRecord).where(DocumentRecord.id.in_(document_ids))
                )

    async def filenames(self, tenant_id: str, document_ids: Iterable[UUID]) -> dict[UUID, str]:
        """The names of those of ``document_ids`` that are the tenant's (and not deleted)."""
        wanted = set(document_ids)
        if not wanted:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(DocumentRecord.id, DocumentRecord.filename).where(
                    DocumentRecord.tenant_id == tenant_id, DocumentRecord.id.in_(wanted)
                )
            )
            return {row.id: row.filename for row in rows}

    async def get(self, document_id: UUID, tenant_id: str) -> DocumentRecord | None:
        """A tenant's document; another tenant's is ``None`` too."""
        async with self._sessions() as session:
            return await session.scalar(
                select(DocumentRecord).where(
                    DocumentRecord.id == document_id, DocumentRecord.tenant_id == tenant_id
                )
            )

    # -- operations: compare and set -------------------------------------------

    async def start_attempt(self, document_id: UUID, attempt: int) -> bool:
        """Claim ``attempt`` for a retry; False if it (or a later one) was claimed."""
        return await self._set_if(document_id, DocumentRecord.attempt < attempt, attempt=attempt)

    async def undo_attempt(self, document_id: UUID, attempt: int) -> None:
        """Give back a claimed attempt whose retry was not announced."""
        await self._set_if(document_id, DocumentRecord.attempt == attempt, attempt=attempt - 1)

    async def stop_attempt(self, document_id: UUID, attempt: int) -> bool:
        """Claim the cancel of ``attempt``; False if it (or a later one) was claimed."""
        return await self._set_if(
            document_id, DocumentRecord.stopped_attempt < attempt, stopped_attempt=attempt
        )

    async def undo_stop(self, document_id: UUID, attempt: int) -> None:
        await self._set_if(
            document_id, DocumentRecord.stopped_attempt == attempt, stopped_attempt=attempt - 1
        )

    async def start_deleting(self, document_id: UUID) -> bool:
        """Claim the document's deletion; False if a delete began already."""
        return await self._set_if(document_id, DocumentRecord.deleting.is_(False), deleting=True)

    async def undo_deleting(self, document_id: UUID) -> None:
        await self._set_if(document_id, DocumentRecord.deleting.is_(True), deleting=False)

    async def _set_if(
        self, document_id: UUID, condition: ColumnElement[bool], **values: Any
    ) -> bool:
        # One statement: the database checks and sets under the row's lock, so
        # two requests cannot both see the old value (no read-then-write race).
        async with self._writing(), self.engine.begin() as connection:
            result = await connection.execute(
                update(DocumentRecord)
                .where(DocumentRecord.id == document_id, condition)
                .values(**values)
            )
        return result.rowcount == 1

    # -- idempotency keys --------------------------------------------------

    async def claim_key(self, tenant_id: str, key: str, fingerprint: str) -> KeyClaim:
        """Claim ``key`` for a request with ``fingerprint``, or say how it was used."""
        now = datetime.now(UTC)
        for _ in range(2):
            try:
                async with self._writing(), self._sessions.begin() as session:
                    found = await session.get(IdempotencyRecord, (tenant_id, key))
                    if found is not None and found.created_at < now - self.key_ttl:
                        await session.delete(found)
                        await session.flush()
                        found = None
                    if found is None:
                        session.add(
                            IdempotencyRecord(
                                tenant_id=tenant_id,
                                key=key,
                                fingerprint=fingerprint,
                                created_at=now,
                            )
                        )
                        return KeyClaim(KeyState.CLAIMED)
            except IntegrityError:
                continue  # claimed by a concurrent request: look again
            if found.fingerprint != fingerprint:
                return KeyClaim(KeyState.MISMATCH)
            if found.status_code is None:
                return KeyClaim(KeyState.IN_PROGRESS)
            return KeyClaim(KeyState.REPLAY, found.status_code, found.response)
        return KeyClaim(KeyState.IN_PROGRESS)

    async def complete_key(
        self, tenant_id: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        async with self._writing(), self._sessions.begin() as session:
            found = await session.get(IdempotencyRecord, (tenant_id, key))
            if found is not None:
                found.status_code = status_code
                found.response = response

    async def release_key(self, tenant_id: str, key: str) -> None:
        """Forget a claim whose request failed, so the client can try again."""
        async with self._writing(), self._sessions.begin() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
                )
            )
