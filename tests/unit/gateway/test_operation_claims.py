"""The operations' compare and set in the gateway's records, on both databases:
of 20 concurrent claims of one attempt exactly one wins (issue 20, finding 6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from docflow_gateway.adapters.registry import DocumentRecord, SqlRegistry
from docflow_shared.events import DocumentUploaded
from docflow_shared.sql import create_engine


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[SqlRegistry]:
    records = SqlRegistry(create_engine(database_url))
    await records.migrate()
    yield records
    await records.engine.dispose()


async def a_document(registry: SqlRegistry) -> DocumentRecord:
    document_id = uuid4()
    event = DocumentUploaded(
        document_id=document_id,
        tenant_id="acme",
        correlation_id="c",
        filename="a.pdf",
        content_type="application/pdf",
        size_bytes=3,
        sha256="0" * 64,
        blob_key=f"acme/{document_id}/a.pdf",
        occurred_at=datetime.now(UTC),
    )
    record = await registry.add(DocumentRecord.of(event, dedup=False))
    assert record is not None
    return record


async def test_of_20_concurrent_retries_of_one_attempt_one_wins(registry: SqlRegistry) -> None:
    record = await a_document(registry)
    won = await asyncio.gather(*(registry.start_attempt(record.id, 2) for _ in range(20)))
    assert won.count(True) == 1
    # The next attempt is another claim.
    assert await registry.start_attempt(record.id, 3)
    assert not await registry.start_attempt(record.id, 2)


async def test_of_concurrent_cancels_and_deletes_one_wins(registry: SqlRegistry) -> None:
    record = await a_document(registry)
    stops = await asyncio.gather(*(registry.stop_attempt(record.id, 1) for _ in range(10)))
    deletes = await asyncio.gather(*(registry.start_deleting(record.id) for _ in range(10)))
    assert (stops.count(True), deletes.count(True)) == (1, 1)


async def test_a_claim_given_back_can_be_won_again(registry: SqlRegistry) -> None:
    record = await a_document(registry)
    assert await registry.start_attempt(record.id, 2)
    await registry.undo_attempt(record.id, 2)
    assert await registry.start_attempt(record.id, 2)
    assert await registry.stop_attempt(record.id, 2)
    await registry.undo_stop(record.id, 2)
    assert await registry.stop_attempt(record.id, 2)
    assert await registry.start_deleting(record.id)
    await registry.undo_deleting(record.id)
    assert await registry.start_deleting(record.id)
