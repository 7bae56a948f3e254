"""The index of the dead-letter topic in the gateway's database, so that
``GET /v1/deadletters`` pages and re-drive selects without reading the topic.

``DeadLetterIndexer`` (``deadletter_indexer.py``) reads each new message of
``docflow.deadletter.v1`` once and writes one row here: where it is
(partition, offset), whose it is (tenant and document, from the body's
envelope when it has a readable one), and why (the failure headers). How far
each partition has been indexed is kept in the same transaction
(``dead_letter_positions``), so the index and its position never disagree,
whatever restarts or how many gateway processes index at once (a row already
there is left alone).

A message whose body names no document (not JSON, no envelope, a tenant id
that is not one) is indexed without tenant and document: it is never listed
to a tenant, and it is counted (the indexer's metrics).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Index, Integer, String, Uuid, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from docflow_gateway.adapters.registry import Base
from docflow_shared import decoding, retries
from docflow_shared.auth import TENANT_PATTERN
from docflow_shared.deadletters import Selection
from docflow_shared.events.envelope import MAX_INT32
from docflow_shared.sql import UTCDateTime

ERROR_CHARS = 2000
CURSOR_PATTERN = r"^[0-9]{1,18}$"
_TENANT = re.compile(TENANT_PATTERN)


class DeadLetterEntry(Base):
    """One message of the dead-letter topic, as the index keeps it."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ux_dead_letters_partition_offset", "partition", "offset", unique=True),
        Index("ix_dead_letters_tenant_seq", "tenant_id", "seq"),
    )

    # The index's own order (the cursor): a row indexed later has a higher one.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    # From the body's envelope; None when it names no document.
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    document_id: Mapped[UUID | None] = mapped_column(Uuid)
    # From the failure headers (docflow_shared.retries).
    topic: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(String(ERROR_CHARS))
    retries: Mapped[int] = mapped_column(Integer)
    dead_lettered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeadLetterPosition(Base):
    """The next offset to index in each partition of the dead-letter topic."""

    __tablename__ = "dead_letter_positions"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_offset: Mapped[int] = mapped_column(BigInteger)


def _cut(value: str, chars: int) -> str:
    return value if len(value) <= chars else value[: chars - 1] + "…"


def _envelope(body: bytes) -> tuple[UUID | None, str | None]:
    # Untrusted bytes (a dead letter is often a message nobody could read):
    # parsed as bounded as any consumer parses (decoding.loads); anything
    # that is not a document id and a well-formed tenant id names no one.
    try:
        data = decoding.loads(body)
        document_id, tenant_id = UUID(str(data["document_id"])), data["tenant_id"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None
    if not isinstance(tenant_id, str) or not _TENANT.fullmatch(tenant_id):
        return None, None
    return document_id, tenant_id


def _retries(value: str | None) -> int:
    try:
        return min(max(int(value or "0"), 0), MAX_INT32)
    except ValueError:
        return 0


def _time(timestamp_ms: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp_ms) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def entry_of(
    partition: int,
    offset: int,
    timestamp_ms: Any,
    body: bytes | None,
    headers: Iterable[tuple[str, bytes | None]] | None,
) -> DeadLetterEntry:
    """The index row of one record of the dead-letter topic; never raises on its
    bytes (any body, any headers)."""
    read: dict[str, str] = {}
    for key, value in headers or ():
        if isinstance(key, str) and key.startswith("docflow-"):
            read[key] = (value or b"")[: ERROR_CHARS * 4].decode(errors="replace")
    document_id, tenant_id = _envelope(body or b"")
    return DeadLetterEntry(
        partition=partition,
        offset=offset,
        tenant_id=tenant_id,
        document_id=document_id,
        topic=_cut(read.get(retries.ORIGINAL_TOPIC, "?"), 255),
        service=_cut(read.get(retries.SERVICE, "?"), 64),
        stage=_cut(read.get(retries.STAGE, ""), 64),
        error=_cut(read.get(retries.ERROR, ""), ERROR_CHARS),
        retries=_retries(read.get(retries.RETRIES)),
        dead_lettered_at=_time(timestamp_ms),
    )


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str) -> int:
    """The position a cursor names; ``ValueError`` for a string not of the pattern."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise ValueError(f"not a cursor: {cursor!r}")
    return int(cursor)


@dataclass(frozen=True)
class Page:
    letters: list[DeadLetterEntry]
    # The cursor of the next page; None on the last.
    next: str | None


class DeadLetterIndex:
    """The dead letters of every tenant, by tenant, in the order they were indexed."""

    def __init__(
        self,
        engine: AsyncEngine,
        writing: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
    ) -> None:
        self.engine = engine
        # The registry's turn to write (SqlRegistry.writing: one writer at a
        # time on SQLite), so indexing never makes an upload wait on SQLite's lock.
        self._writing = writing

    async def positions(self) -> dict[int, int]:
        """The next offset to index, per partition (none yet: not in the answer)."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(DeadLetterPosition.__table__))
            return {row.partition: row.next_offset for row in rows}

    async def add(self, entries: Sequence[DeadLetterEntry], positions: Mapping[int, int]) -> None:
        """Index ``entries`` and move the partitions' positions forward, in one
        transaction; a row indexed already (same partition and offset) stays."""
        columns = [c.key for c in DeadLetterEntry.__table__.columns if c.key != "seq"]
        rows = [{key: getattr(entry, key) for key in columns} for entry in entries]
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        async with self._writing(), self.engine.begin() as connection:
            if rows:
                await connection.execute(
                    insert(DeadLetterEntry).on_conflict_do_nothing(
                        index_elements=["partition", "offset"]
                    ),
                    rows,
                )
            for partition, offset in sorted(positions.items()):
                await connection.execute(
                    insert(DeadLetterPosition)
                    .values(partition=partition, next_offset=offset)
                    .on_conflict_do_nothing(index_elements=["partition"])
                )
                await connection.execute(
                    update(DeadLetterPosition)
                    .where(
                        DeadLetterPosition.partition == partition,
                        DeadLetterPosition.next_offset < offset,
                    )
                    .values(next_offset=offset)
                )

    async def page(self, tenant_id: str, limit: int, after: int | None = None) -> Page:
        """The tenant's dead letters after cursor position ``after``, ``limit`` of them."""
        query = (
            select(DeadLetterEntry)
            .where(DeadLetterEntry.tenant_id == tenant_id)
            .order_by(DeadLetterEntry.seq)
            .limit(limit + 1)
        )
        if after is not None:
            query = query.where(DeadLetterEntry.seq > after)
        async with self.engine.connect() as connection:
            found = [DeadLetterEntry(**row._mapping) for row in await connection.execute(query)]
        more = len(found) > limit
        found = found[:limit]
        return Page(found, encode_cursor(found[-1].seq) if more else None)

    async def matching(self, tenant_id: str, selection: Selection) -> list[DeadLetterEntry]:
        """The tenant's dead letters that ``selection`` matches, in index order."""
        table = DeadLetterEntry
        query = select(table).where(table.tenant_id == tenant_id).order_by(table.seq)
        if selection.document_ids is not None:
            query = query.where(table.document_id.in_(list(selection.document_ids)))
        if selection.topic is not None:
            query = query.where(table.topic == selection.topic)
        if selection.service is not None:
            query = query.where(table.service == selection.service)
        if selection.error_contains is not None:
            # Case-sensitive on both databases (SQLite's LIKE is not).
            find = func.strpos if self.engine.dialect.name == "postgresql" else func.instr
            query = query.where(find(table.error, selection.error_contains) > 0)
        if selection.since is not None:
            query = query.where(table.dead_lettered_at >= selection.since)
        async with self.engine.connect() as connection:
            return [DeadLetterEntry(**row._mapping) for row in await connection.execute(query)]
