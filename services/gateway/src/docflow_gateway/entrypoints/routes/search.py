"""``GET /v1/search``: the tenant's documents, searched by meaning, by their words, or
both (by the embedder)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from docflow_gateway.adapters.search_client import KeywordsMissing, SearchUnavailable
from docflow_gateway.entrypoints.deps import RateLimitedTenant, RecordsDep, SearchDep
from docflow_gateway.entrypoints.problems import unavailable
from docflow_shared.http import Problem, problem_responses

router = APIRouter()

SearchMode = Literal["hybrid", "dense", "keyword"]


class SearchResult(BaseModel):
    """A chunk of one of the tenant's documents that matches the query."""

    document_id: UUID
    filename: str
    chunk_index: int
    page: int | None = Field(description="The page the chunk starts on (PDF); null for text")
    page_end: int | None = Field(description="The page it ends on (PDF); null for text")
    score: float = Field(
        description="Higher is better. dense: cosine similarity to the query; keyword: BM25 "
        "score; hybrid: Reciprocal Rank Fusion of the two rankings (ranks, not scores, "
        "count; comparable only within one answer)"
    )
    text: str


class SearchResults(BaseModel):
    """Chunks of the tenant's documents, closest in meaning to the query first."""

    query: str
    model: str = Field(description="The embedding model that embedded the query and the chunks")
    mode: SearchMode = Field(
        default="hybrid", description="How the results were found (see the mode parameter)"
    )
    note: str | None = Field(
        default=None,
        description="Why the results were found another way than asked: hybrid on a "
        "collection made before keyword search answers by meaning only until it is re-embedded; "
        "a reranker that failed leaves the results in the search's order",
    )
    reranked: bool = Field(
        default=False,
        description="Whether a reranker (DOCFLOW_RERANK_URL, off by default) ordered the "
        "results; their scores are then its scores",
    )
    results: list[SearchResult]


@router.get(
    "/v1/search",
    summary="Search the tenant's documents by meaning and by their words.",
    description="Among the tenant's chunks only. dense: the query is embedded with the model\n"
    "that embedded the chunks and compared by cosine; keyword: its words (stemmed, without\n"
    "stopwords) are matched by BM25, so exact names and codes are found; hybrid (the\n"
    "default): both rankings fused by Reciprocal Rank Fusion.",
    responses=problem_responses(
        {
            401: "Authentication is on and no valid API key was sent",
            409: "mode=keyword on a collection made before keyword search: re-embed it",
            422: "Malformed request: an empty or over-long query, a limit or mode out of range",
            429: "The tenant sent too many requests; see Retry-After",
            503: "The embedder is unavailable; retry after Retry-After",
        }
    ),
)
async def search(
    find: SearchDep,
    records: RecordsDep,
    tenant: RateLimitedTenant,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    mode: Annotated[
        SearchMode,
        Query(
            description="hybrid: by meaning and by words, fused by rank; dense: by meaning; "
            "keyword: by words (BM25)"
        ),
    ] = "hybrid",
) -> SearchResults:
    """The tenant's chunks closest in meaning to ``q``, with their documents' names."""
    if not q.strip():
        raise Problem(422, "empty-query", "the query is blank; send some words to look for")
    try:
        found = await find(q, tenant, limit, mode=mode)
    except KeywordsMissing as exc:
        raise Problem(409, "keywords-missing", str(exc)) from exc
    except SearchUnavailable as exc:
        raise unavailable("search", exc) from exc
    hits = found["hits"]
    names = await records.filenames(tenant, (UUID(h["document_id"]) for h in hits))
    return SearchResults(
        query=q,
        model=found["model"],
        mode=found.get("mode", mode),
        note=found.get("note"),
        reranked=found.get("reranked", False),
        results=[
            SearchResult(**hit, filename=names[UUID(hit["document_id"])])
            for hit in hits
            # A document deleted a moment ago may still have vectors.
            if UUID(hit["document_id"]) in names
        ],
    )
