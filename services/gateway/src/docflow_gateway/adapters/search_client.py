"""The embedder's search, over HTTP (``docflow_embedder.entrypoints.http``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from docflow_shared.auth import INTERNAL_TOKEN_HEADER

# The embedder's search as the gateway calls it: (query, tenant, limit) → its answer.
Search = Callable[[str, str, int], Awaitable[dict[str, Any]]]


class SearchUnavailable(Exception):
    """The embedder did not answer the search."""


class HttpSearch:
    """Asks the embedder for a tenant's chunks nearest to a query."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/internal/search"
        # The embedder answers only callers with the internal token.
        self._headers = {INTERNAL_TOKEN_HEADER: token} if token else {}

    async def __call__(self, query: str, tenant_id: str, limit: int) -> dict[str, Any]:
        """``{"model", "collection", "hits": [{document_id, chunk_index, page, page_end,
        score, text}]}``, best first."""
        try:
            response = await self._client.get(
                self._url,
                params={"q": query, "tenant": tenant_id, "limit": limit},
                headers=self._headers,
            )
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"the embedder did not answer: {exc}") from exc
        if response.status_code != 200:
            raise SearchUnavailable(
                f"the embedder answered {response.status_code}: {response.text[:200]}"
            )
        body: dict[str, Any] = response.json()
        return body
