"""SQL pieces the services with a database share (SQLAlchemy, async).

SQLite is the embedded default and PostgreSQL the production store; needs
the ``sql`` extra.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, inspect
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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
    wait for the projector."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: the
            # database stays consistent; a power cut may lose the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


class OutdatedSchemaError(RuntimeError):
    """The database was made by an older docflow and lacks columns this one needs."""


async def create_schema(engine: AsyncEngine, metadata: MetaData, owner: str) -> None:
    """Create missing tables; refuse, with what to do, a table that lacks columns.

    Until migrations exist (Alembic), an older database is not altered in place.
    """

    def create_and_compare(connection: Connection) -> list[str]:
        metadata.create_all(connection)
        inspector = inspect(connection)
        missing = []
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
        return missing

    async with engine.begin() as connection:
        missing = await connection.run_sync(create_and_compare)
    if missing:
        raise OutdatedSchemaError(
            f"the {owner} database {engine.url.render_as_string(hide_password=True)} was made "
            f"by an older docflow (missing {', '.join(missing)}); remove it (`make clean` for "
            "the local defaults) so it is created afresh"
        )
