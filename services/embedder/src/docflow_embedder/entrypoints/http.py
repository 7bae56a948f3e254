"""The embedder's internal HTTP route: search, for the gateway.

``GET /internal/search?q=…&tenant=…&limit=…&mode=…`` embeds the query with
the model that embedded the chunks and returns the tenant's nearest chunks,
from the active collection (the old one until a re-embedding switches);
``mode`` (``hybrid``, the default, ``dense`` or ``keyword``) says whether
its words are matched too (``handlers.search_chunks``). It is
on the embedder because the query must be embedded by the same model, and
because Qdrant's local mode lets only one process open its folder. The
caller (the gateway) has authenticated the tenant and names it; so that no one
else can name a tenant, every request must carry the internal token
(``DOCFLOW_INTERNAL_TOKEN``, header ``X-Docflow-Internal-Token``): without
it, or when none is configured, the answer is 401 (docs/architecture.md,
"Trust boundaries").
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from faststream.asgi import AsgiResponse, get

from docflow_embedder.domain import SEARCH_MODES, Index, KeywordsMissing, Reranker
from docflow_embedder.handlers import search_chunks
from docflow_shared.auth import INTERNAL_TOKEN_HEADER, internal_token_valid

SEARCH_PATH = "/internal/search"
MAX_QUERY_CHARS = 2000
MAX_LIMIT = 50

_JSON = {"content-type": "application/json"}


def _answer(body: dict[str, Any], status: int = 200) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, headers=_JSON)


def _presented_token(scope: Any) -> str | None:
    name = INTERNAL_TOKEN_HEADER.lower().encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def search_route(
    index: Index,
    token: str | None,
    *,
    reranker: Reranker | None = None,
    rerank_candidates: int = 30,
) -> tuple[str, Any]:
    """The search route, for ``AsgiFastStream(asgi_routes=…)``; it answers only
    requests that carry ``token`` (none when ``token`` is None). With a
    ``reranker``, its best ``rerank_candidates`` are reranked."""

    @get(include_in_schema=False)
    async def search(scope: Any) -> AsgiResponse:
        if not internal_token_valid(token, _presented_token(scope)):
            detail = f"an internal route: send the internal token as {INTERNAL_TOKEN_HEADER}"
            return _answer({"detail": detail}, 401)
        params = parse_qs(scope.get("query_string", b"").decode())
        query = params.get("q", [""])[0].strip()
        tenant = params.get("tenant", [""])[0]
        limit_text = params.get("limit", ["10"])[0]
        mode = params.get("mode", ["hybrid"])[0]
        if not query or len(query) > MAX_QUERY_CHARS:
            return _answer({"detail": f"q must have 1 to {MAX_QUERY_CHARS} characters"}, 422)
        if not tenant:
            return _answer({"detail": "tenant is required"}, 422)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            return _answer({"detail": f"limit must be 1 to {MAX_LIMIT}"}, 422)
        if mode not in SEARCH_MODES:
            return _answer({"detail": f"mode must be one of {', '.join(SEARCH_MODES)}"}, 422)
        active = (await to_thread.run_sync(index.targets)).active
        try:
            found = await search_chunks(
                query,
                tenant,
                int(limit_text),
                embedder=active.embedder,
                vectors=active.vectors,
                mode=mode,
                reranker=reranker,
                candidates=rerank_candidates,
            )
        except KeywordsMissing as exc:
            return _answer({"detail": str(exc), "code": "keywords-missing"}, 409)
        return _answer(
            {
                "model": active.embedder.model,
                "collection": active.vectors.collection,
                "mode": found.mode,
                "note": found.note,
                "reranked": found.reranked,
                "hits": [
                    {
                        "document_id": str(hit.document_id),
                        "chunk_index": hit.chunk_index,
                        "page": hit.page,
                        "page_end": hit.page_end,
                        "score": hit.score,
                        "text": hit.text,
                    }
                    for hit in found.hits
                ],
            }
        )

    return SEARCH_PATH, search
