"""The asynchronous client of both public services (``AsyncDocflow``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from docflow_client import models as m
from docflow_client.errors import RateLimited, Unavailable, problem_of, unreachable
from docflow_client.requests import (
    TIMEOUT,
    UPLOAD_ATTEMPTS,
    Upload,
    Uploadable,
    filter_params,
    listing_params,
    redrive_body,
    reindex_body,
    uploads_of,
)
from docflow_client.sse import ServerEvent, server_events

M = TypeVar("M", bound=BaseModel)


class AsyncDocflow:
    """One client of the gateway and the status service.

    ``async with AsyncDocflow("http://gateway:8000", "http://status:8001",
    api_key=...) as docflow``. Errors are ``Unreachable`` (no answer) or a
    ``ProblemError`` subclass (the service's problem document). ``transport``
    and ``status_transport`` replace the network (e.g. ``httpx.ASGITransport``
    of the apps themselves).
    """

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
        headers = {"X-API-Key": api_key} if api_key else {}
        self.gateway_url = gateway_url.rstrip("/")
        self.status_url = status_url.rstrip("/")
        self._gateway = httpx.AsyncClient(
            base_url=self.gateway_url, headers=headers, timeout=timeout, transport=transport
        )
        self._status = httpx.AsyncClient(
            base_url=self.status_url,
            headers=headers,
            timeout=timeout,
            transport=status_transport or transport,
        )

    async def __aenter__(self) -> AsyncDocflow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._gateway.aclose()
        await self._status.aclose()

    # --- plumbing ----------------------------------------------------------

    async def send(
        self, service: str, method: str, path: str, *, ok: int = 200, **kwargs: Any
    ) -> Any:
        """The decoded JSON of an ``ok`` answer from ``service`` ("gateway" or
        "status"); ``ProblemError`` for any other answer, ``Unreachable`` for none."""
        response = await self._answer(service, method, path, **kwargs)
        if response.status_code != ok:
            raise problem_of(response)
        return response.json()

    async def _answer(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        http = self._gateway if service == "gateway" else self._status
        try:
            return await http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(http.base_url, exc) from exc

    async def _model(
        self, model: type[M], service: str, method: str, path: str, **kwargs: Any
    ) -> M:
        return model.model_validate(await self.send(service, method, path, **kwargs))

    # --- gateway -----------------------------------------------------------

    async def upload(
        self,
        *files: Uploadable,
        dedup: bool = True,
        attempts: int = UPLOAD_ATTEMPTS,
        metadata: dict[str, Any] | None = None,
    ) -> list[m.AcceptedDocument]:
        """Upload files (paths, ``(name, bytes or binary file)`` pairs, or binary
        files with a ``name``) in one request; sent again after 429 or 503
        (nothing was kept) up to ``attempts`` times, waiting ``Retry-After``.
        ``metadata`` (a flat JSON object) goes with every file of the request."""
        parts = uploads_of(files)
        params = {} if dedup else {"dedup": "false"}
        for attempt in range(1, attempts + 1):
            with Upload(parts, metadata) as fields:
                try:
                    return (
                        await self._model(
                            m.UploadAccepted,
                            "gateway",
                            "POST",
                            "/v1/documents",
                            ok=202,
                            params=params,
                            files=fields,
                        )
                    ).documents
                except (RateLimited, Unavailable) as refused:
                    if attempt == attempts:
                        raise
                    await asyncio.sleep(refused.retry_after or 1.0)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def search(
        self,
        query: str,
        *,
        limit: int = 10,
        mode: m.SearchMode = "hybrid",
        meta: dict[str, Any] | Iterable[str] | None = None,
        filename: str | Iterable[str] | None = None,
        document_id: UUID | str | Iterable[UUID | str] | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        group: str | None = None,
        group_size: int | None = None,
    ) -> m.SearchResults:
        """The tenant's chunks that match ``query``, best first; ``mode``: ``hybrid``
        (by meaning and words), ``dense`` (meaning) or ``keyword`` (words, BM25);
        filtered (``meta``: a mapping or ``key=value`` strings), or each document once
        (``group="document"``), in any mode."""
        params = [("q", query), ("limit", limit), ("mode", mode)]
        params += filter_params(
            {
                "meta": meta,
                "filename": filename,
                "document_id": document_id,
                "created_from": created_from,
                "created_before": created_before,
                "group": group,
                "group_size": group_size,
            }
        )
        return await self._model(m.SearchResults, "gateway", "GET", "/v1/search", params=params)

    async def chunks(
        self, document_id: UUID | str, *, limit: int = 100, cursor: str | None = None
    ) -> m.ChunkPage:
        """One page of a document's extracted chunks, in order."""
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        path = f"/v1/documents/{document_id}/chunks"
        return await self._model(m.ChunkPage, "gateway", "GET", path, params=params)

    async def retry(self, document_id: UUID | str) -> m.OperationAccepted:
        return await self._operate("POST", f"/v1/documents/{document_id}/retry")

    async def cancel(self, document_id: UUID | str) -> m.OperationAccepted:
        return await self._operate("POST", f"/v1/documents/{document_id}/cancel")

    async def delete(self, document_id: UUID | str) -> m.OperationAccepted:
        return await self._operate("DELETE", f"/v1/documents/{document_id}")

    async def _operate(self, method: str, path: str) -> m.OperationAccepted:
        return await self._model(m.OperationAccepted, "gateway", method, path, ok=202)

    async def reindex(
        self,
        embedding: m.EmbeddingSpec | dict[str, Any],
        *,
        document_ids: Iterable[UUID | str] | None = None,
    ) -> m.ReindexAccepted:
        """Re-embed the tenant's documents (or some) with another model."""
        body = reindex_body(embedding, document_ids)
        return await self._model(
            m.ReindexAccepted, "gateway", "POST", "/v1/reindex", ok=202, json=body
        )

    async def dead_letters(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> m.DeadLetterList:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return await self._model(
            m.DeadLetterList, "gateway", "GET", "/v1/deadletters", params=params
        )

    async def redrive(self, **request: Any) -> m.RedriveResult:
        """Retry the documents of dead letters (``document_ids``, ``service``,
        ``since``, ``error_contains``, ``dry_run``: the gateway's filters)."""
        return await self._model(
            m.RedriveResult,
            "gateway",
            "POST",
            "/v1/deadletters/redrive",
            json=redrive_body(request),
        )

    async def create_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] | None = None,
        description: str | None = None,
    ) -> m.WebhookCreated:
        """Register an endpoint for ``events`` (completed, failed, cancelled,
        progress; all when None); the answer's ``secret`` is shown this once."""
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        if description is not None:
            body["description"] = description
        return await self._model(
            m.WebhookCreated, "gateway", "POST", "/v1/webhooks", ok=201, json=body
        )

    async def webhooks(self) -> m.WebhookList:
        return await self._model(m.WebhookList, "gateway", "GET", "/v1/webhooks")

    async def webhook(self, webhook_id: UUID | str) -> m.Webhook:
        return await self._model(m.Webhook, "gateway", "GET", f"/v1/webhooks/{webhook_id}")

    async def delete_webhook(self, webhook_id: UUID | str) -> None:
        response = await self._answer("gateway", "DELETE", f"/v1/webhooks/{webhook_id}")
        if response.status_code != 204:
            raise problem_of(response)

    async def rotate_webhook_secret(self, webhook_id: UUID | str) -> m.WebhookSecretRotated:
        """A new secret for the endpoint, shown this once; deliveries carry a signature
        made with the previous one too until ``previous_secret_expires_at``."""
        path = f"/v1/webhooks/{webhook_id}/secret"
        return await self._model(m.WebhookSecretRotated, "gateway", "POST", path)

    async def webhook_deliveries(
        self, webhook_id: UUID | str, *, limit: int = 50, cursor: str | None = None
    ) -> m.WebhookDeliveryList:
        """A page of the endpoint's deliveries, newest first (``next_cursor`` for the next)."""
        path = f"/v1/webhooks/{webhook_id}/deliveries"
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return await self._model(m.WebhookDeliveryList, "gateway", "GET", path, params=params)

    async def redrive_webhook_delivery(
        self, webhook_id: UUID | str, delivery_id: UUID | str
    ) -> m.WebhookDelivery:
        """Send a delivery again (same ``webhook-id`` and body, fresh retries)."""
        path = f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redrive"
        return await self._model(m.WebhookDelivery, "gateway", "POST", path, ok=202)

    # --- status service ----------------------------------------------------

    async def status(self, document_id: UUID | str) -> m.DocumentStatus:
        path = f"/v1/documents/{document_id}"
        return await self._model(m.DocumentStatus, "status", "GET", path)

    async def documents(self, **filters: Any) -> m.DocumentList:
        """One page of the tenant's documents, newest first (``status``, ``stage``,
        ``created_from``, ``created_before``, ``meta``, ``filename``, ``document_id``,
        ``limit``, ``cursor``)."""
        params = listing_params(filters)
        return await self._model(m.DocumentList, "status", "GET", "/v1/documents", params=params)

    async def counts(self) -> m.DocumentCounts:
        return await self._model(m.DocumentCounts, "status", "GET", "/v1/documents/counts")

    async def timeline(self, document_id: UUID | str) -> m.Timeline:
        path = f"/v1/documents/{document_id}/events"
        return await self._model(m.Timeline, "status", "GET", path)

    async def reindex_status(self, reindex_id: UUID | str) -> m.ReindexStatus:
        path = f"/v1/reindex/{reindex_id}"
        return await self._model(m.ReindexStatus, "status", "GET", path)

    async def stream(
        self, document_id: UUID | str | None = None, *, last_event_id: str | None = None
    ) -> AsyncIterator[m.StatusChange]:
        """Status changes as they happen: the tenant's (no ``document_id``), until
        the connection breaks off, or one document's, until its status is terminal.
        Resume after a break with the last change's ``event_id``."""
        async for event in self.events(document_id, last_event_id=last_event_id):
            if event.event in ("status", "deleted"):
                yield m.StatusChange.of(event.event, event.json(), event.id)

    async def events(
        self, document_id: UUID | str | None = None, *, last_event_id: str | None = None
    ) -> AsyncIterator[ServerEvent]:
        """The same stream as ``stream``, as the Server-Sent Events it is made of."""
        path = (
            "/v1/documents/stream" if document_id is None else f"/v1/documents/{document_id}/stream"
        )
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            # No read timeout: a stream is quiet between changes (pings every 15 s).
            async with self._status.stream(
                "GET", path, headers=headers, timeout=httpx.Timeout(None, connect=5.0)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise problem_of(response)
                async for event in server_events(response.aiter_lines()):
                    yield event
        except httpx.TransportError as exc:
            raise unreachable(self._status.base_url, exc) from exc

    async def wait(
        self,
        document_id: UUID | str,
        *,
        # The same as the blocking client's (asyncio.timeout() works as well).
        timeout: float | None = None,  # noqa: ASYNC109
        poll_s: float = 1.0,
    ) -> m.DocumentStatus:
        """The document's status once it is terminal (completed, failed or
        cancelled); ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = await self.status(document_id)
            if current.status.terminal:
                return current
            if deadline is not None and time.monotonic() + poll_s > deadline:
                raise TimeoutError(
                    f"document {document_id} is still {current.status} after {timeout} s"
                )
            await asyncio.sleep(poll_s)
