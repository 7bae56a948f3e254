"""The embedder's search, over HTTP (``docflow_embedder.entrypoints.http``)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from docflow_shared.auth import INTERNAL_TOKEN_HEADER


class Search(Protocol):
    """The embedder's search as the gateway calls it: (query, tenant, limit, mode) → its
    answer."""

    async def __call__(
        self, query: str, tenant_id: str, limit: int, *, mode: str = "hybrid"
    ) -> dict[str, Any]: ...


class SearchUnavailable(Exception):
    """The embedder did not answer the search."""


class KeywordsMissing(Exception):
    """Keyword search asked of a collection made before keyword vectors (the embedder's 409)."""


class HttpSearch:
    """Asks the embedder for a tenant's chunks nearest to a query."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/internal/search"
        # The embedder answers only callers with the internal token.
        self._headers = {INTERNAL_TOKEN_HEADER: token} if token else {}

    async def __call__(
        self, query: str, tenant_id: str, limit: int, *, mode: str = "hybrid"
    ) -> dict[str, Any]:
        """``{"model", "collection", "mode", "note", "hits": [{document_id, chunk_index,
        page, page_end, score, text}]}``, best first."""
        try:
            response = await self._client.get(
                self._url,
                params={"q": query, "tenant": tenant_id, "limit": limit, "mode": mode},
                headers=self._headers,
            )
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"the embedder did not answer: {exc}") from exc
        if response.status_code == 409 and _code(response) == "keywords-missing":
            raise KeywordsMissing(response.json()["detail"])
        if response.status_code != 200:
            raise SearchUnavailable(
                f"the embedder answered {response.status_code}: {response.text[:200]}"
            )
        body: dict[str, Any] = response.json()
        return body


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None
