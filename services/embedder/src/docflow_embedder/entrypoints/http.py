"""The embedder's internal HTTP route: search, for the gateway.

``GET /internal/search?q=…&tenant=…&limit=…&mode=…`` embeds the query with
the model that embedded the chunks and returns the tenant's nearest chunks,
from the active collection (the old one until a re-embedding switches);
``mode`` (``hybrid``, the default, ``dense`` or ``keyword``) says whether
its words are matched too (``handlers.search_chunks``). It is
on the embedder because the query must be embedded by the same model, and
because the embedded vector store lets only one process open its folder. The
caller (the gateway) has authenticated the tenant and names it; so that no one
else can name a tenant, every request must carry the internal token
(``DOCFLOW_INTERNAL_TOKEN``, header ``X-Docflow-Internal-Token``): without
it, or when none is configured, the answer is 401 (docs/architecture.md,
"Trust boundaries").

Optional filters narrow the tenant's chunks (never widen them,
adapters/qdrant_filters.py): ``meta=key=value`` (repeatable; one key's values
are alternatives, different keys must all match), ``filename`` and
``document_id`` (repeatable), ``created_from``/``created_before`` (upload time,
ISO 8601 with a zone). ``group=document`` answers each document once with its
``group_size`` best chunks (``groups``), ``limit`` then counting documents.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from anyio import to_thread
from faststream.asgi import AsgiResponse, get

from docflow_embedder.domain import (
    SEARCH_MODES,
    Index,
    KeywordsMissing,
    Reranker,
    SearchFilters,
    SearchHit,
)
from docflow_embedder.handlers import search_chunks
from docflow_shared.auth import INTERNAL_TOKEN_HEADER, internal_token_valid
from docflow_shared.events.metadata import MetadataError, parse_filter

SEARCH_PATH = "/internal/search"
MAX_QUERY_CHARS = 2000
MAX_LIMIT = 50
MAX_GROUP_SIZE = 10
# Values per filter field, at most.
MAX_FILTER_VALUES = 100

_JSON = {"content-type": "application/json"}


def _answer(body: dict[str, Any], status: int = 200) -> AsgiResponse:
    return AsgiResponse(json.dumps(body).encode(), status, headers=_JSON)


def _presented_token(scope: Any) -> str | None:
    name = INTERNAL_TOKEN_HEADER.lower().encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class BadFilter(ValueError):
    """A filter parameter is malformed; the message says which."""


def _instant(params: dict[str, list[str]], name: str) -> datetime | None:
    if name not in params:
        return None
    try:
        value = datetime.fromisoformat(params[name][0])
    except ValueError:
        raise BadFilter(f"{name} must be an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise BadFilter(f"{name} must have a time zone")
    return value


def parse_filters(params: dict[str, list[str]]) -> SearchFilters:
    """The search's filters from its query parameters; ``BadFilter`` naming a bad one."""
    for name in ("meta", "filename", "document_id"):
        if len(params.get(name, [])) > MAX_FILTER_VALUES:
            raise BadFilter(f"at most {MAX_FILTER_VALUES} {name} filters")
    terms: dict[str, list[str]] = {}
    for text in params.get("meta", []):
        try:
            key, found = parse_filter(text)
        except MetadataError as exc:
            raise BadFilter(str(exc)) from None
        terms.setdefault(key, []).append(found)
    try:
        document_ids = tuple(UUID(value) for value in params.get("document_id", []))
    except ValueError:
        raise BadFilter("document_id must be a UUID") from None
    return SearchFilters(
        metadata=tuple(tuple(values) for values in terms.values()),
        filenames=tuple(params.get("filename", [])),
        document_ids=document_ids,
        created_from=_instant(params, "created_from"),
        created_before=_instant(params, "created_before"),
    )


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "document_id": str(hit.document_id),
        "chunk_index": hit.chunk_index,
        "page": hit.page,
        "page_end": hit.page_end,
        "score": hit.score,
        "text": hit.text,
    }


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
        group = params.get("group", [""])[0]
        size_text = params.get("group_size", ["3"])[0]
        if group not in ("", "document"):
            return _answer({"detail": "group must be `document` when given"}, 422)
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_GROUP_SIZE:
            return _answer({"detail": f"group_size must be 1 to {MAX_GROUP_SIZE}"}, 422)
        try:
            filters = parse_filters(params)
        except BadFilter as exc:
            return _answer({"detail": str(exc)}, 422)
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
                filters=filters,
                group_size=int(size_text) if group else None,
            )
        except KeywordsMissing as exc:
            return _answer({"detail": str(exc), "code": "keywords-missing"}, 409)
        answer: dict[str, Any] = {
            "model": active.embedder.model,
            "collection": active.vectors.collection,
            "mode": found.mode,
            "note": found.note,
            "reranked": found.reranked,
            "hits": [_hit_json(hit) for hit in found.hits],
        }
        if found.groups is not None:
            answer["groups"] = [
                {"document_id": str(g.document_id), "hits": [_hit_json(h) for h in g.hits]}
                for g in found.groups
            ]
        return _answer(answer)

    return SEARCH_PATH, search
