"""The gateway's index of the dead-letter topic (adapters/deadletter_index.py):
pages, filters, idempotent indexing, and rows from any bytes.

The indexer on a real broker, and requests answered from the index without
reading the topic: tests/integration/test_deadletter_index.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from docflow_gateway.adapters.deadletter_index import (
    DeadLetterEntry,
    DeadLetterIndex,
    decode_cursor,
    entry_of,
)
from docflow_gateway.adapters.registry import Base, SqlRegistry
from docflow_shared import retries, topics
from docflow_shared.deadletters import Selection
from docflow_shared.sql import create_engine, schema_differences
from support.gateway import ClientFor, Recorder

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def headers(error: str = "Qdrant: connection refused", service: str = "embedder") -> list:
    return [
        (retries.ORIGINAL_TOPIC, topics.EXTRACTED.encode()),
        (retries.SERVICE, service.encode()),
        (retries.STAGE, b"embedding"),
        (retries.ERROR, error.encode()),
        (retries.RETRIES, b"3"),
    ]


def entry(offset: int, tenant: str | None, *, partition: int = 0, **kw: str) -> DeadLetterEntry:
    body = json.dumps({"document_id": str(uuid4()), "tenant_id": tenant}).encode()
    at = int((T0 + timedelta(seconds=offset)).timestamp() * 1000)
    return entry_of(partition, offset, at, body if tenant else b"[[[", headers(**kw))


@pytest.fixture
async def index(database_url: str) -> AsyncIterator[DeadLetterIndex]:
    records = SqlRegistry(create_engine(database_url))
    await records.migrate()
    yield DeadLetterIndex(records.engine)
    await records.engine.dispose()


async def test_the_migrations_make_the_index_tables_as_the_code_declares_them(
    index: DeadLetterIndex,
) -> None:
    async with index.engine.connect() as connection:
        assert await connection.run_sync(schema_differences, Base.metadata) == []


async def test_a_tenant_pages_through_its_own_dead_letters_only(index: DeadLetterIndex) -> None:
    # 250 of acme's among globex's and unreadable ones, on two partitions.
    entries = [
        entry(n, ("acme", "acme", "globex", None)[n % 4], partition=n % 2) for n in range(334)
    ]
    await index.add(entries, {0: 334, 1: 334})
    acme = [e for e in entries if e.tenant_id == "acme"]
    seen: list[tuple[int, int]] = []
    cursor = None
    pages = 0
    while True:
        page = await index.page("acme", 40, decode_cursor(cursor) if cursor else None)
        pages += 1
        assert len(page.letters) <= 40
        assert {letter.tenant_id for letter in page.letters} <= {"acme"}
        seen += [(letter.partition, letter.offset) for letter in page.letters]
        cursor = page.next
        if cursor is None:
            break
    assert seen == [(e.partition, e.offset) for e in acme]
    assert pages == 5  # 167 letters: 40, 40, 40, 40, 7
    assert (await index.page("initech", 10)).letters == []


async def test_indexing_again_adds_nothing_and_positions_only_move_forward(
    index: DeadLetterIndex,
) -> None:
    first = [entry(n, "acme") for n in range(10)]
    await index.add(first, {0: 10})
    # Another gateway process indexing the same records, then a late one behind.
    await index.add([entry(n, "acme") for n in range(5, 12)], {0: 12, 3: 4})
    await index.add([entry(n, "acme") for n in range(3)], {0: 3})
    letters = (await index.page("acme", 500)).letters
    assert [letter.offset for letter in letters] == list(range(12))
    assert await index.positions() == {0: 12, 3: 4}


async def test_the_redrive_selection_is_answered_by_the_index(index: DeadLetterIndex) -> None:
    await index.add(
        [
            entry(1, "acme", error="Qdrant: 50% of calls refused"),
            entry(2, "acme", error="qdrant: lower case"),
            entry(3, "acme", error="blob store timed out", service="extractor"),
            entry(4, "globex", error="Qdrant: 50% of calls refused"),
        ],
        {0: 5},
    )

    async def offsets(selection: Selection) -> list[int]:
        return [letter.offset for letter in await index.matching("acme", selection)]

    assert await offsets(Selection()) == [1, 2, 3]
    # Literal and case-sensitive, as Python's `in` was: neither % nor _ is a wildcard.
    assert await offsets(Selection(error_contains="Qdrant")) == [1]
    assert await offsets(Selection(error_contains="50%")) == [1]
    assert await offsets(Selection(error_contains="5_%")) == []
    assert await offsets(Selection(service="extractor")) == [3]
    assert await offsets(Selection(since=T0 + timedelta(seconds=2))) == [2, 3]
    mine = (await index.page("acme", 1)).letters[0].document_id
    assert isinstance(mine, UUID)
    assert await offsets(Selection(document_ids=[mine])) == [1]


HOSTILE_BODIES = [
    b"",
    b"\xff\xfe\x00garbage",
    b"[" * 100_000,
    b'{"document_id": "not-a-uuid", "tenant_id": "acme"}',
    b'{"document_id": "3f2a0000-0000-4000-8000-000000000000", "tenant_id": "a b;DROP"}',
    b'{"document_id": "3f2a0000-0000-4000-8000-000000000000", "tenant_id": 7}',
    b'{"document_id": "3f2a0000-0000-4000-8000-000000000000", "tenant_id": "' + b"x" * 65 + b'"}',
    b'{"document_id": ["3f2a"], "tenant_id": "acme"}',
    b"[1, 2, 3]",
    b'"just a string"',
    b"x" * (2 * 1024 * 1024),
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
async def test_any_bytes_are_indexed_as_naming_no_one(index: DeadLetterIndex, body: bytes) -> None:
    hostile_headers = [
        (retries.ERROR, b"\xff" * 100_000),
        (retries.RETRIES, b"-99999999999999999999"),
        (retries.SERVICE, "é".encode() * 1000),
        (retries.STAGE, None),
        ("not-ours", b"\x00"),
    ]
    row = entry_of(2, 7, 10**20, body, hostile_headers)
    assert row.tenant_id is None
    assert row.document_id is None
    assert row.retries == 0
    assert len(row.error) <= 2000
    assert len(row.service) <= 64
    await index.add([row], {2: 8})  # fits the columns on both databases
    assert await index.positions() == {2: 8}
    assert (await index.page("acme", 10)).letters == []


def test_a_readable_envelope_names_its_tenant_and_document() -> None:
    document = uuid4()
    body = json.dumps({"document_id": str(document), "tenant_id": "acme", "x": [1]}).encode()
    row = entry_of(0, 1, int(T0.timestamp() * 1000), body, headers())
    assert (row.tenant_id, row.document_id) == ("acme", document)
    assert (row.service, row.stage, row.retries, row.topic) == (
        "embedder",
        "embedding",
        3,
        topics.EXTRACTED,
    )
    assert row.dead_lettered_at == T0


def test_the_api_pages_with_limit_and_cursor_and_refuses_bad_ones(
    tmp_path: Path, client_for: ClientFor
) -> None:
    from docflow_shared.deadletters import DeadLetter

    letters = [
        DeadLetter(
            partition=0,
            offset=n,
            at=T0,
            body=json.dumps({"document_id": str(uuid4()), "tenant_id": "default"}).encode(),
            headers={retries.SERVICE: "embedder", retries.ERROR: f"error {n}"},
            document_id=None,
            tenant_id=None,
        )
        for n in range(7)
    ]
    client = client_for(tmp_path / "blobs", Recorder(), letters=letters)
    errors, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/v1/deadletters", params=params).json()
        errors += [d["error"] for d in answer["dead_letters"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert errors == [f"error {n}" for n in range(7)]
    first = client.get("/v1/deadletters").json()["dead_letters"][0]
    assert (first["partition"], first["offset"]) == (0, 0)
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "abc"}, {"cursor": "1" * 19}):
        response = client.get("/v1/deadletters", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
