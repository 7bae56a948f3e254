"""The embedder's internal HTTP route: search, for the gateway.

``GET /internal/search?q=…&tenant=…&limit=…`` embeds the query with the
model that embedded the chunks and returns the tenant's nearest chunks, from
the active collection (the old one until a re-embedding switches). It is
on the embedder because the query must be embedded by the same model, and
because Qdrant's local mode lets only one process open its folder. The
caller (the gateway) has authenticated the tenant: like ``/metrics``, this
port is for the cluster's inside only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from faststream.asgi import AsgiResponse, get

from docflow_embedder.domain import Index
from docflow_embedder.handlers import search_chunks

SEARCH_PATH = "/internal/search"
MAX_QUERY_CHARS = 2000
MAX_LIMIT = 50

_JSON = {"content-type": "application/json"}


def _answer(body: dict[str, Any], status: int = 200) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, headers=_JSON)


def search_route(index: Index) -> tuple[str, Any]:
    """The search route, for ``AsgiFastStream(asgi_routes=…)``."""

    @get(include_in_schema=False)
    async def search(scope: Any) -> AsgiResponse:
        params = parse_qs(scope.get("query_string", b"").decode())
        query = params.get("q", [""])[0].strip()
        tenant = params.get("tenant", [""])[0]
        limit_text = params.get("limit", ["10"])[0]
        if not query or len(query) > MAX_QUERY_CHARS:
            return _answer({"detail": f"q must have 1 to {MAX_QUERY_CHARS} characters"}, 422)
        if not tenant:
            return _answer({"detail": "tenant is required"}, 422)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _answer({"detail": f"limit must be 1 to {MAX_LIMIT}"}, 422)
        active = (await to_thread.run_sync(index.targets)).active
        hits = await search_chunks(
            query, tenant, int(limit_text), embedder=active.embedder, vectors=active.vectors
        )
        return _answer(
            {
                "model": active.embedder.model,
                "collection": active.vectors.collection,
                "hits": [
                    {
                        "document_id": str(hit.document_id),
                        "chunk_index": hit.chunk_index,
                        "page": hit.page,
                        "page_end": hit.page_end,
                        "score": hit.score,
                        "text": hit.text,
                    }
                    for hit in hits
                ],
            }
        )

    return SEARCH_PATH, search
