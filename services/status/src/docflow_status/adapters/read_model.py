"""The read model in SQL (SQLAlchemy): SQLite by default, PostgreSQL in production.

The engine comes from ``docflow_shared.sql.create_engine``. The tables are in
``tables.py``, the writer in ``projector.py``, the reads in ``queries.py``;
``rebuild.py`` builds a fresh model beside this one and swaps it in.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from docflow_shared.sql import migrate
from docflow_status.adapters.projector import SqlProjector
from docflow_status.adapters.queries import SqlQueries
from docflow_status.adapters.tables import MIGRATIONS, Base


class SqlReadModel(SqlProjector, SqlQueries):
    """The projector and the queries on one engine, and the engine's lifecycle.

    One object, because the service wires one read model: the projector, the
    API, the stream and the watchdog all use it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        SqlProjector.__init__(self, engine)
        SqlQueries.__init__(self, engine)

    async def migrate(self) -> None:
        """Create or update the tables (Alembic migrations in ``docflow_status/migrations``)."""
        await migrate(self.engine, MIGRATIONS, Base.metadata, "status")

    async def check(self) -> None:
        """Raises unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        """Close every connection."""
        self._read.close()
        await self.engine.dispose()
