"""The embedder's search, over HTTP (``docflow_embedder.entrypoints.http``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import httpx

from docflow_shared.auth import INTERNAL_TOKEN_HEADER


@dataclass(frozen=True)
class SearchOptions:
    """Filters and the result mode of a search (the embedder's query parameters,
    docflow_embedder/entrypoints/http.py); none of them can widen it beyond the tenant."""

    # ``key=value`` metadata filters.
    meta: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    document_ids: tuple[UUID, ...] = ()
    created_from: datetime | None = None
    created_before: datetime | None = None
    # "document": each document once, with its ``group_size`` best chunks.
    group: str | None = None
    group_size: int = 3

    def params(self) -> list[tuple[str, str]]:
        params = [("meta", m) for m in self.meta]
        params += [("filename", f) for f in self.filenames]
        params += [("document_id", str(d)) for d in self.document_ids]
        if self.created_from is not None:
            params.append(("created_from", self.created_from.isoformat()))
        if self.created_before is not None:
            params.append(("created_before", self.created_before.isoformat()))
        if self.group is not None:
            params += [("group", self.group), ("group_size", str(self.group_size))]
        return params


class Search(Protocol):
    """The embedder's search as the gateway calls it: (query, tenant, limit, mode) → its
    answer; with ``options=SearchOptions(…)`` when filters or a result mode were asked
    for."""

    async def __call__(
        self,
        query: str,
        tenant_id: str,
        limit: int,
        *,
        mode: str = "hybrid",
        options: SearchOptions | None = None,
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
        self,
        query: str,
        tenant_id: str,
        limit: int,
        *,
        mode: str = "hybrid",
        options: SearchOptions | None = None,
    ) -> dict[str, Any]:
        """``{"model", "collection", "mode", "note", "reranked", "hits": [{document_id,
        chunk_index, page, page_end, score, text}]}``, best first; with ``groups``
        (``[{document_id, hits}]``) when grouped by document."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("q", query),
            ("tenant", tenant_id),
            ("limit", limit),
            ("mode", mode),
        ]
        if options is not None:
            params += options.params()
        query_params = httpx.QueryParams(params)
        try:
            response = await self._client.get(self._url, params=query_params, headers=self._headers)
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
