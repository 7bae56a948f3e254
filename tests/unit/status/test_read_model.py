"""The SQL read model on a real SQLite file and a real PostgreSQL database, and the
migrations of both services' databases."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from docflow_gateway.adapters import registry
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import DocumentDeleted, Event, parse_any
from docflow_shared.sql import OutdatedSchemaError, create_engine, schema_differences
from docflow_status.adapters import tables
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import DocumentState, Status, evolve
from docflow_status.handlers import UnownedSweep
from support.histories import envelope, successful


def project_in_order(events: list[Event]) -> DocumentState | None:
    state = None
    for event in events:
        state = evolve(state, event)
    return state


async def test_applying_a_history_stores_the_folded_state(read_model: SqlReadModel) -> None:
    events = successful()
    for event in events:
        assert await read_model.apply(event, evolve)
    state = await read_model.get(events[0].document_id, "t1")
    assert state is not None
    assert (state.status, state.progress, state.chunks_total) == (Status.COMPLETED, 100, 12)
    assert state.created_at == events[0].occurred_at
    assert state.created_at.tzinfo == UTC


async def test_an_event_is_applied_once_however_often_it_arrives(read_model: SqlReadModel) -> None:
    calls = 0

    def counting_fold(state, event):
        nonlocal calls
        calls += 1
        return evolve(state, event)

    event = successful()[0]
    assert await read_model.apply(event, counting_fold) is True
    assert await read_model.apply(event, counting_fold) is False
    assert calls == 1


async def test_the_first_copy_of_an_event_counts_in_one_batch_as_in_two(
    database_url: str,
) -> None:
    """Found by the fault suite: after a crash the embedder announces a document
    indexed again, with the same id and a later ``occurred_at``. Live, the copies
    came in separate polls (the first counted); a replay read both in one batch,
    and the last counted, so the replay disagreed with the live model."""
    history = successful()
    indexed = history[-1]
    again = indexed.model_copy(update={"occurred_at": indexed.occurred_at + timedelta(seconds=9)})
    states = []
    for batches in ([[*history, again]], [history, [again]]):
        model = SqlReadModel(create_engine(database_url))
        await model.migrate()
        try:
            await model.apply_all([], evolve)
            for batch in batches:
                await model.apply_all(batch, evolve)
            states.append(await model.get(indexed.document_id, "t1"))
            async with model.engine.begin() as connection:
                await connection.execute(text("DELETE FROM documents"))
                await connection.execute(text("DELETE FROM processed_events"))
        finally:
            await model.close()
    one_batch, two_batches = states
    assert one_batch is not None
    assert one_batch == two_batches
    assert one_batch.completed_at == indexed.occurred_at


async def test_a_failed_fold_writes_nothing(read_model: SqlReadModel) -> None:
    event = successful()[0]

    def broken_fold(state, event):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await read_model.apply(event, broken_fold)
    assert await read_model.get(event.document_id, "t1") is None
    assert await read_model.apply(event, evolve) is True


async def test_another_tenants_document_is_not_found(read_model: SqlReadModel) -> None:
    event = successful()[0]
    await read_model.apply(event, evolve)
    assert await read_model.get(event.document_id, "someone-else") is None


async def test_the_database_check_answers(read_model: SqlReadModel) -> None:
    await read_model.check()


async def test_a_sqlite_database_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    model = SqlReadModel(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'status.db'}"))
    try:
        await model.migrate()
        await model.check()
    finally:
        await model.close()
    assert (tmp_path / "new" / "status.db").is_file()


async def test_a_deleted_document_is_not_found(read_model: SqlReadModel) -> None:
    events = successful()
    document_id = events[0].document_id
    for event in [*events, DocumentDeleted(**envelope(document_id, 99))]:
        await read_model.apply(event, evolve)
    assert await read_model.get(document_id, "t1") is None


async def test_a_database_from_an_older_version_is_refused_with_what_to_do(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE documents (id CHAR(32) PRIMARY KEY)")
    with pytest.raises(OutdatedSchemaError, match="make clean"):
        await SqlReadModel(engine).migrate()
    await engine.dispose()


def newest_revision(migrations: Path) -> str | None:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    return ScriptDirectory.from_config(config).get_current_head()


def _declare_every_table() -> None:
    # Tables are declared on a service's Base by several modules (the gateway's
    # dead-letter index, its webhooks…): import all of them, so the comparison
    # does not depend on which other tests imported what first.
    for package in (registry, tables):
        parent = importlib.import_module(package.__name__.rpartition(".")[0])
        for module in pkgutil.iter_modules(parent.__path__):
            importlib.import_module(f"{parent.__name__}.{module.name}")


_declare_every_table()

MIGRATED = [
    pytest.param(SqlReadModel, id="status"),
    pytest.param(SqlRegistry, id="gateway"),
]


@pytest.mark.parametrize("store", MIGRATED)
async def test_the_migrations_make_exactly_the_tables_the_code_declares(
    database_url: str, store: type[SqlReadModel] | type[SqlRegistry]
) -> None:
    engine = create_engine(database_url)
    try:
        await store(engine).migrate()
        await store(engine).migrate()  # a second start finds nothing to do
        metadata = (tables.Base if store is SqlReadModel else registry.Base).metadata
        async with engine.connect() as connection:
            assert await connection.run_sync(schema_differences, metadata) == []
    finally:
        await engine.dispose()


async def test_a_database_made_before_migrations_is_adopted_as_it_is(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    try:
        # What the service made before migrations: the first revision's tables, no version.
        async with engine.begin() as connection:
            await connection.exec_driver_sql(LEGACY_DOCUMENTS)
            await connection.exec_driver_sql(LEGACY_PROCESSED_EVENTS)
            for index in LEGACY_INDEXES:
                await connection.exec_driver_sql(index)
            await connection.exec_driver_sql(
                "INSERT INTO documents VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 't1', "
                "'old.pdf', 'application/pdf', 10, 'completed', 'indexed', 100, "
                "'Indexed 1 chunks', 1, 1, 1, 1, 1, 1, NULL, "
                "'2026-11-01 10:00:00', NULL, NULL, NULL, 1, NULL)"
            )
        model = SqlReadModel(engine)
        await model.migrate()
        old = await model.get(UUID("a" * 32), "t1")
        assert old is not None
        assert old.status is Status.COMPLETED
        async with engine.connect() as connection:
            version = await connection.exec_driver_sql(
                "SELECT version_num FROM status_schema_version"
            )
            assert version.scalar_one() == newest_revision(tables.MIGRATIONS)
            assert await connection.run_sync(schema_differences, tables.Base.metadata) == []
    finally:
        await engine.dispose()


# As SQLAlchemy's create_all wrote them for SQLite before migrations existed.
LEGACY_DOCUMENTS = """CREATE TABLE documents (
    id CHAR(32) NOT NULL, tenant_id VARCHAR(64) NOT NULL, filename VARCHAR(255),
    content_type VARCHAR(64), size_bytes INTEGER, status VARCHAR(16) NOT NULL,
    stage VARCHAR(16) NOT NULL, progress INTEGER NOT NULL, message VARCHAR(2000) NOT NULL,
    pages INTEGER, extract_done INTEGER NOT NULL, extract_total INTEGER,
    chunks_extracted INTEGER NOT NULL, chunks_total INTEGER, chunks_embedded INTEGER NOT NULL,
    error JSON, created_at DATETIME, started_at DATETIME, completed_at DATETIME,
    updated_at DATETIME, attempt INTEGER NOT NULL, deleted_at DATETIME, PRIMARY KEY (id))"""
LEGACY_PROCESSED_EVENTS = """CREATE TABLE processed_events (
    event_id CHAR(32) NOT NULL, document_id CHAR(32) NOT NULL,
    event_type VARCHAR(64) NOT NULL, PRIMARY KEY (event_id))"""
LEGACY_INDEXES = [
    "CREATE INDEX ix_documents_tenant_id ON documents (tenant_id)",
    "CREATE INDEX ix_documents_status ON documents (status)",
    "CREATE INDEX ix_processed_events_document_id ON processed_events (document_id)",
]


@pytest.mark.parametrize("store", MIGRATED)
async def test_replicas_starting_together_migrate_once(
    database_url: str, store: type[SqlReadModel] | type[SqlRegistry]
) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        # Three processes' worth of engines on one fresh database, at once.
        await asyncio.gather(*(store(engine).migrate() for engine in engines))
        metadata = (tables.Base if store is SqlReadModel else registry.Base).metadata
        async with engines[0].connect() as connection:
            assert await connection.run_sync(schema_differences, metadata) == []
    finally:
        for engine in engines:
            await engine.dispose()


async def test_an_event_naming_a_known_document_under_another_tenant_is_not_applied(
    read_model: SqlReadModel,
) -> None:
    history = successful()
    document_id = history[0].document_id
    await read_model.apply_all(history, evolve)
    before = await read_model.versioned(document_id, "t1")
    forged = [
        DocumentDeleted(**{**envelope(document_id, 99), "tenant_id": "globex"}),
        history[1].model_copy(update={"tenant_id": "globex", "event_id": uuid4()}),
    ]
    projected = await read_model.apply_all(forged, evolve)
    assert projected.applied == 0
    assert [event for event, _ in projected.rejected] == forged
    assert {why.reason for _, why in projected.rejected} == {"tenant_changed"}
    assert projected.documents == {}
    assert await read_model.versioned(document_id, "t1") == before
    assert await read_model.get(document_id, "globex") is None
    # Not recorded as applied: the same event from its own tenant would still count.
    own = forged[0].model_copy(update={"tenant_id": "t1"})
    assert (await read_model.apply_all([own], evolve)).applied == 1


async def test_the_upload_decides_whose_document_it_is_whichever_event_comes_first(
    read_model: SqlReadModel,
) -> None:
    """A forged event read before the upload (another topic, polled first) waits for
    it, and is then rejected; the owner's events that came early are applied."""
    history = successful()
    upload, *rest = history
    forged = rest[-1].model_copy(update={"tenant_id": "globex", "event_id": uuid4()})
    early = await read_model.apply_all([forged, rest[0]], evolve)
    assert (early.applied, early.parked, early.rejected, early.documents) == (0, 2, [], {})
    assert await read_model.get(upload.document_id, "globex") is None
    assert await read_model.get(upload.document_id, "t1") is None

    projected = await read_model.apply_all([upload, *rest[1:]], evolve)
    assert [event for event, _ in projected.rejected] == [forged]
    assert projected.applied == len(history)
    assert projected.parked == 0
    assert await read_model.get(upload.document_id, "t1") == project_in_order(history)
    assert await read_model.unowned_before(datetime.now(UTC) + timedelta(days=1)) == []


async def test_an_upload_whose_claim_check_is_not_its_own_claims_nothing(
    read_model: SqlReadModel,
) -> None:
    history = successful()
    upload = history[0]
    forged = upload.model_copy(update={"event_id": uuid4(), "blob_key": f"acme/{uuid4()}/original"})
    projected = await read_model.apply_all([forged], evolve)
    assert [(event, why.reason) for event, why in projected.rejected] == [(forged, "blob_key")]
    assert await read_model.get(upload.document_id, "t1") is None
    # The real upload still decides.
    assert (await read_model.apply_all(history, evolve)).applied == len(history)


async def test_an_event_whose_upload_never_comes_is_given_up_and_dead_lettered(
    read_model: SqlReadModel,
) -> None:
    history = successful()
    orphan = history[2]
    await read_model.apply_all([orphan, orphan], evolve)
    given_up: list[tuple[bytes, str]] = []

    async def reject(body: bytes, origin: None, why: UntrustedEvent) -> None:
        given_up.append((body, why.reason))

    sweep = UnownedSweep(read_model, reject, ttl_s=60)
    assert await sweep.sweep() == 0  # not yet
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert await sweep.sweep(now=later) == 1
    assert [(parse_any(body), reason) for body, reason in given_up] == [(orphan, "no_upload")]
    assert await sweep.sweep(now=later) == 0
    # Its upload, should it come after all, finds nothing parked.
    assert (await read_model.apply_all(history[:2], evolve)).applied == 2
