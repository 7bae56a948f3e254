"""Gateway test helpers: a recording publisher, a fake status service, an app factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient
from faststream.kafka import KafkaBroker

from docflow_gateway.adapters.deadletter_index import DeadLetterIndex, entry_of
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.search_client import (
    KeywordsMissing,
    SearchOptions,
    SearchUnavailable,
)
from docflow_gateway.adapters.status_client import StatusUnavailable
from docflow_gateway.bootstrap import Ports, wire
from docflow_gateway.redrive import DeadLetters
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import BlobStore, LocalBlobStore
from docflow_shared.deadletters import DeadLetter
from docflow_shared.events import Envelope
from docflow_shared.sql import create_engine

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


class Recorder:
    """Records published events; ``fail`` refuses all, ``refuse`` the uploads of some files."""

    def __init__(self, fail: bool = False, refuse: frozenset[str] = frozenset()) -> None:
        self.events: list[Envelope] = []
        self.fail = fail
        self.refuse = refuse

    async def __call__(self, event: Envelope) -> None:
        if self.fail or getattr(event, "filename", None) in self.refuse:
            raise ConnectionError("Kafka did not acknowledge")
        self.events.append(event)


class DeadLetterShelf:
    """The dead-letter topic as the gateway's indexer sees it: ``letters`` are
    indexed (into the real SQL index) when a request waits for the index to
    catch up (as ``DeadLetterIndexer`` does from the topic)."""

    def __init__(self, letters: list[DeadLetter], index: DeadLetterIndex) -> None:
        self.letters = letters
        self.index = index

    async def caught_up(self) -> None:
        entries = [
            entry_of(
                letter.partition,
                letter.offset,
                int(letter.at.timestamp() * 1000),
                letter.body,
                [(k, v.encode()) for k, v in letter.headers.items()],
            )
            for letter in self.letters
        ]
        positions: dict[int, int] = {}
        for entry in entries:
            positions[entry.partition] = max(positions.get(entry.partition, 0), entry.offset + 1)
        with contextlib.suppress(Exception):  # the database made unavailable by a test
            await self.index.add(entries, positions)


class Statuses:
    """The status service as the gateway sees it: status documents by id."""

    def __init__(self) -> None:
        self.by_id: dict[UUID, dict[str, Any]] = {}
        self.down = False

    async def get(self, document_id: UUID) -> dict[str, Any] | None:
        if self.down:
            raise StatusUnavailable("connection refused")
        return self.by_id.get(document_id)


class Searches:
    """The embedder's search as the gateway sees it: fixed hits, recorded calls."""

    def __init__(self, hits: list[dict[str, Any]] | None = None) -> None:
        self.hits = hits or []
        self.calls: list[tuple[str, str, int]] = []
        self.modes: list[str] = []
        # The options of each call that had some (filters, grouping).
        self.options: list[SearchOptions] = []
        self.groups: list[dict[str, Any]] = []
        self.down = False
        # A collection made before keyword search: mode=keyword is refused.
        self.without_keywords = False

    async def __call__(
        self,
        query: str,
        tenant_id: str,
        limit: int,
        *,
        mode: str = "hybrid",
        options: SearchOptions | None = None,
    ) -> dict[str, Any]:
        if self.down:
            raise SearchUnavailable("connection refused")
        self.calls.append((query, tenant_id, limit))
        self.modes.append(mode)
        if self.without_keywords and mode == "keyword":
            raise KeywordsMissing("docflow_x was made before keyword search: re-embed it")
        answer = {"model": "test-model", "collection": "c", "mode": mode, "note": None}
        answer["hits"] = self.hits[:limit]
        if options is not None:
            self.options.append(options)
            if options.group is not None:
                answer["groups"] = self.groups[:limit]
                answer["hits"] = [hit for group in self.groups[:limit] for hit in group["hits"]]
        return answer


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


ClientFor = Callable[..., TestClient]


def gateway_app(
    database_url: str,
    blob_root: Path,
    publish: Recorder,
    statuses: Statuses | None = None,
    searches: Searches | None = None,
    letters: list[DeadLetter] | None = None,
    blobs: BlobStore | None = None,
    redrive_delivery: Any = None,
    **configured: Any,
) -> FastAPI:
    """A gateway app (not started: its lifespan migrates the database) on a blob
    store under ``blob_root`` and the database at ``database_url``."""
    records = SqlRegistry(create_engine(database_url))
    shelf = DeadLetterShelf(letters if letters is not None else [], DeadLetterIndex(records.engine))

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await records.migrate()
        yield
        await records.engine.dispose()

    ports = Ports(
        blobs=blobs or LocalBlobStore(blob_root),
        records=records,
        publish=publish,
        status_for=lambda headers: statuses or Statuses(),
        search=searches or Searches(),
        dead_letters=DeadLetters(shelf.index, shelf.caught_up),
        checks={},
        lifespan=lifespan,
        redrive_delivery=redrive_delivery,
    )
    settings = GatewaySettings(status_public_url="http://status.example:8001/", **configured)
    # Never started: the gateway publishes through ``publish`` only.
    return wire(KafkaBroker(), ports, settings)


def gateway_clients(tmp_path: Path, database_url: str | None = None) -> Iterator[ClientFor]:
    """A gateway app on a blob store under tmp_path (or ``blobs=``) and a database
    (SQLite there by default), started (lifespan run)."""
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    with ExitStack() as stack:

        def make(blob_root: Path, publish: Recorder, *args: Any, **kwargs: Any) -> TestClient:
            app = gateway_app(url, blob_root, publish, *args, **kwargs)
            return stack.enter_context(TestClient(app))

        yield make
