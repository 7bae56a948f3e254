"""The synchronous client (``Docflow``): the asynchronous one run on a private
event loop, so both have the same methods, errors and retries."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar
from uuid import UUID

import httpx

from docflow_client import models as m
from docflow_client.aio import AsyncDocflow
from docflow_client.requests import TIMEOUT, UPLOAD_ATTEMPTS, Uploadable

T = TypeVar("T")


class Docflow:
    """``with Docflow("http://gateway:8000", "http://status:8001") as docflow``;
    the methods of ``AsyncDocflow``, blocking. ``transport`` and
    ``status_transport`` are *async* transports (``httpx.ASGITransport``).

    It runs its own event loop, so it cannot be called from a coroutine (or a
    notebook's running loop): use ``AsyncDocflow`` there."""

    def __init__(
        self,
        gateway_url: str = "http://localhost:8000",
        status_url: str = "http://localhost:8001",
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        status_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self.aio = self._run(
            _made(gateway_url, status_url, api_key, timeout, transport, status_transport)
        )

    def _run(self, work: Awaitable[T]) -> T:
        with self._lock:
            return self._loop.run_until_complete(work)

    def __enter__(self) -> Docflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self.aio.aclose())
            self._loop.close()

    def upload(
        self,
        *files: Uploadable,
        dedup: bool = True,
        attempts: int = UPLOAD_ATTEMPTS,
        metadata: dict[str, Any] | None = None,
    ) -> list[m.AcceptedDocument]:
        return self._run(self.aio.upload(*files, dedup=dedup, attempts=attempts, metadata=metadata))

    def search(
        self, query: str, *, limit: int = 10, mode: m.SearchMode = "hybrid", **filters: Any
    ) -> m.SearchResults:
        """As ``AsyncDocflow.search``: ``mode``, and ``meta``, ``filename``,
        ``document_id``, ``created_from``, ``created_before``, ``group``, ``group_size``."""
        return self._run(self.aio.search(query, limit=limit, mode=mode, **filters))

    def chunks(
        self, document_id: UUID | str, *, limit: int = 100, cursor: str | None = None
    ) -> m.ChunkPage:
        return self._run(self.aio.chunks(document_id, limit=limit, cursor=cursor))

    def retry(self, document_id: UUID | str) -> m.OperationAccepted:
        return self._run(self.aio.retry(document_id))

    def cancel(self, document_id: UUID | str) -> m.OperationAccepted:
        return self._run(self.aio.cancel(document_id))

    def delete(self, document_id: UUID | str) -> m.OperationAccepted:
        return self._run(self.aio.delete(document_id))

    def reindex(
        self, embedding: m.EmbeddingSpec | dict[str, Any], *, document_ids: Any = None
    ) -> m.ReindexAccepted:
        return self._run(self.aio.reindex(embedding, document_ids=document_ids))

    def dead_letters(self, *, limit: int = 100, cursor: str | None = None) -> m.DeadLetterList:
        return self._run(self.aio.dead_letters(limit=limit, cursor=cursor))

    def redrive(self, **request: Any) -> m.RedriveResult:
        return self._run(self.aio.redrive(**request))

    def create_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] | None = None,
        description: str | None = None,
    ) -> m.WebhookCreated:
        return self._run(self.aio.create_webhook(url, events=events, description=description))

    def webhooks(self) -> m.WebhookList:
        return self._run(self.aio.webhooks())

    def webhook(self, webhook_id: UUID | str) -> m.Webhook:
        return self._run(self.aio.webhook(webhook_id))

    def delete_webhook(self, webhook_id: UUID | str) -> None:
        self._run(self.aio.delete_webhook(webhook_id))

    def rotate_webhook_secret(self, webhook_id: UUID | str) -> m.WebhookSecretRotated:
        return self._run(self.aio.rotate_webhook_secret(webhook_id))

    def webhook_deliveries(
        self, webhook_id: UUID | str, *, limit: int = 50, cursor: str | None = None
    ) -> m.WebhookDeliveryList:
        return self._run(self.aio.webhook_deliveries(webhook_id, limit=limit, cursor=cursor))

    def redrive_webhook_delivery(
        self, webhook_id: UUID | str, delivery_id: UUID | str
    ) -> m.WebhookDelivery:
        return self._run(self.aio.redrive_webhook_delivery(webhook_id, delivery_id))

    def status(self, document_id: UUID | str) -> m.DocumentStatus:
        return self._run(self.aio.status(document_id))

    def documents(self, **filters: Any) -> m.DocumentList:
        return self._run(self.aio.documents(**filters))

    def counts(self) -> m.DocumentCounts:
        return self._run(self.aio.counts())

    def timeline(self, document_id: UUID | str) -> m.Timeline:
        return self._run(self.aio.timeline(document_id))

    def reindex_status(self, reindex_id: UUID | str) -> m.ReindexStatus:
        return self._run(self.aio.reindex_status(reindex_id))

    def wait(
        self, document_id: UUID | str, *, timeout: float | None = None, poll_s: float = 1.0
    ) -> m.DocumentStatus:
        return self._run(self.aio.wait(document_id, timeout=timeout, poll_s=poll_s))

    def stream(
        self, document_id: UUID | str | None = None, *, last_event_id: str | None = None
    ) -> Iterator[m.StatusChange]:
        """Status changes as they happen (see ``AsyncDocflow.stream``)."""
        changes = self.aio.stream(document_id, last_event_id=last_event_id)
        assert isinstance(changes, AsyncGenerator)
        try:
            while True:
                try:
                    yield self._run(_next(changes))
                except StopAsyncIteration:
                    return
        finally:
            self._run(changes.aclose())


async def _next(changes: Any) -> m.StatusChange:
    change: m.StatusChange = await changes.__anext__()
    return change


def _made(*args: Any) -> Coroutine[Any, Any, AsyncDocflow]:
    async def make() -> AsyncDocflow:
        # Built on the private loop, where its connections will live.
        return AsyncDocflow(
            args[0],
            args[1],
            api_key=args[2],
            timeout=args[3],
            transport=args[4],
            status_transport=args[5],
        )

    return make()
