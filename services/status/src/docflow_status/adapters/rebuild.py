"""A rebuild of the read model: fresh tables beside the live ones, then a swap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, delete, event, insert, select, text
from sqlalchemy.engine import make_url

from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.adapters.tables import Base

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
