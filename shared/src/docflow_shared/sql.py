"""SQL pieces the services with a database share (SQLAlchemy, async).

SQLite is the embedded default and PostgreSQL the production store; needs
the ``sql`` extra.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, MetaData, TypeDecorator, event, inspect, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url``; SQLite gets its folder and WAL, so API reads never
    wait for the projector.

    PostgreSQL over TLS: ``?ssl=require`` (or ``verify-ca``, ``verify-full``)
    in the URL, as asyncpg names it; libpq's ``sslmode=`` is taken as the
    same. asyncpg verifies the server against the CA file PGSSLROOTCERT names.
    """
    parsed = _asyncpg_ssl(make_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _asyncpg_ssl(url: URL) -> URL:
    """libpq's ``sslmode`` as asyncpg's ``ssl`` (asyncpg takes the same modes;
    passed through, ``sslmode`` would be an unknown argument to its connect)."""
    if url.get_driver_name() != "asyncpg" or "sslmode" not in url.query:
        return url
    if "ssl" in url.query:
        raise ValueError("the database URL has both ssl= and sslmode=: keep one")
    mode = url.query["sslmode"]
    return url.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: the
    # database stays consistent; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Reader:
    """Runs read-only queries (functions of a sync ``Connection``) as fast as the database allows.

    On SQLite a lookup takes tens of microseconds, while handing it to
    aiosqlite's thread and back costs about a millisecond (the event loop and
    the thread take turns on the GIL): reads run on a synchronous connection
    in the caller's thread. WAL mode lets them read while the projector
    writes. On PostgreSQL (asyncpg, no threads) they run on the async engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._async = engine
        self._sync: Engine | None = None
        if engine.dialect.name == "sqlite":
            self._sync = create_sync_engine(engine.url.set(drivername="sqlite"))
            event.listen(self._sync, "connect", _sqlite_pragmas)

    async def __call__(self, query: Callable[[Connection], T]) -> T:
        if self._sync is not None:
            with self._sync.connect() as connection:
                return query(connection)
        async with self._async.connect() as connection:
            return await connection.run_sync(query)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()


def unavailable(exc: BaseException) -> bool:
    """Errors that say the database cannot be used now (down, unreachable, the
    connection lost, the pool exhausted, the schema not there yet), not that a
    statement or a value is wrong: a consumer waits these out."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | SQLAlchemyTimeoutError
    )


class OutdatedSchemaError(RuntimeError):
    """The database was made by an older docflow in a way no migration can bring up to date."""


def _version_table(owner: str) -> str:
    return f"{owner}_schema_version"


async def migrate(engine: AsyncEngine, migrations: Path, metadata: MetaData, owner: str) -> None:
    """Bring the database up to the newest schema with the Alembic migrations in ``migrations``.

    Each service keeps its own migrations and version table
    (``<owner>_schema_version``), so two services may share one PostgreSQL
    database. A database made before migrations existed (tables, no version
    table) is adopted as the first revision when it has every column that
    revision made, and refused with what to do otherwise.
    """

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(migrations))
        config.attributes.update(
            connection=connection, metadata=metadata, version_table=_version_table(owner)
        )
        tables = set(inspect(connection).get_table_names())
        if _version_table(owner) not in tables and tables & set(metadata.tables):
            missing = _missing_columns(connection, _first_revision_schema(config))
            if missing:
                raise OutdatedSchemaError(
                    f"the {owner} database {engine.url.render_as_string(hide_password=True)} "
                    f"was made by an older docflow (missing {', '.join(missing)}); remove it "
                    "(`make clean` for the local defaults) so it is created afresh"
                )
            command.stamp(config, _first_revision(config))
        command.upgrade(config, "head")

    # Replicas starting together must not migrate together: one does it, the
    # others wait and then find nothing to do.
    async with _migration_lock(engine, owner), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held until this transaction ends (PostgreSQL's DDL is transactional).
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(owner)}
            )
        await connection.run_sync(upgrade)


def _lock_key(owner: str) -> int:
    digest = hashlib.sha256(f"docflow-migrations-{owner}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def _migration_lock(engine: AsyncEngine, owner: str) -> AsyncIterator[None]:
    """On SQLite (one machine), a lock file beside the database; elsewhere nothing
    (PostgreSQL takes an advisory lock in the migration's transaction)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    lock_file = await asyncio.to_thread(Path(f"{database}.{owner}-migrations.lock").open, "a")
    try:
        await asyncio.to_thread(fcntl.flock, lock_file, fcntl.LOCK_EX)
        yield
    finally:
        lock_file.close()  # releases the lock


def _first_revision_schema(config: Config) -> MetaData:
    """The tables the first revision makes: what a database from before migrations has."""
    scratch = create_sync_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            first = Config()
            first.set_main_option("script_location", str(config.get_main_option("script_location")))
            first.attributes.update(config.attributes, connection=connection)
            command.upgrade(first, _first_revision(config))
            schema = MetaData()
            schema.reflect(connection)
            version = schema.tables[config.attributes["version_table"]]
            schema.remove(version)
            return schema
    finally:
        scratch.dispose()


def _first_revision(config: Config) -> str:
    base = ScriptDirectory.from_config(config).get_base()
    assert isinstance(base, str), "migrations must start from one revision"
    return base


def _missing_columns(connection: Connection, metadata: MetaData) -> list[str]:
    inspector = inspect(connection)
    present_tables = set(inspector.get_table_names())
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in present_tables:
            missing.append(table.name)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return missing


def run_migrations_here() -> None:
    """The body of every service's migrations ``env.py``: migrate on the caller's connection."""
    from alembic import context

    attributes = context.config.attributes
    context.configure(
        connection=attributes["connection"],
        target_metadata=attributes["metadata"],
        version_table=attributes["version_table"],
        # SQLite alters tables by copying them: migrations stay portable.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def schema_differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """What the migrated database lacks or has beyond ``metadata`` (a test of the migrations)."""

    def ours(name: str | None, kind: str, parents: Any) -> bool:
        return not (kind == "table" and name is not None and name.endswith("_schema_version"))

    migration_context = MigrationContext.configure(connection, opts={"include_name": ours})
    return list(compare_metadata(migration_context, metadata))
