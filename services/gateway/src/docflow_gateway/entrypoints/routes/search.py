"""``GET /v1/search``: the tenant's documents, searched by meaning, by their words, or
both (by the embedder)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from docflow_gateway.adapters.search_client import (
    KeywordsMissing,
    SearchOptions,
    SearchUnavailable,
)
from docflow_gateway.entrypoints.deps import RateLimitedTenant, RecordsDep, SearchDep
from docflow_gateway.entrypoints.problems import unavailable
from docflow_shared.filters import Instant, MetaFilter
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


class DocumentResult(BaseModel):
    """One document that matches the query, with its best chunks (``group=document``)."""

    document_id: UUID
    filename: str
    score: float = Field(description="Its best chunk's score")
    chunks: list[SearchResult] = Field(description="Its best chunks, best first")


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
        "results; their scores are then its scores. Results by document "
        "(`group=document`) are not reranked",
    )
    results: list[SearchResult]
    documents: list[DocumentResult] | None = Field(
        default=None,
        description="With `group=document`: each document once, best first, with its best "
        "chunks (`results` then holds the same chunks in this order); null otherwise",
    )


# Values per filter parameter, at most (the embedder's bound).
MAX_FILTER_VALUES = 100


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
            422: "Malformed request: an empty or over-long query, a limit or mode out of range, "
            "a filter that is not well formed (`meta` not `key=value`, a time without a zone)",
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
    limit: Annotated[
        int, Query(ge=1, le=50, description="Chunks; with `group=document`, documents")
    ] = 10,
    mode: Annotated[
        SearchMode,
        Query(
            description="hybrid: by meaning and by words, fused by rank; dense: by meaning; "
            "keyword: by words (BM25)"
        ),
    ] = "hybrid",
    meta: Annotated[
        list[MetaFilter] | None,
        Query(
            max_length=MAX_FILTER_VALUES,
            description="Metadata filter `key=value` (repeatable): different keys must all "
            "match, several values of one key are alternatives; numbers and booleans as "
            "in JSON (`year=2024`, `draft=true`); a list value matches any of its items",
        ),
    ] = None,
    filename: Annotated[
        list[str] | None,
        Query(max_length=MAX_FILTER_VALUES, description="Only documents of this name (repeatable)"),
    ] = None,
    document_id: Annotated[
        list[UUID] | None,
        Query(max_length=MAX_FILTER_VALUES, description="Only these documents (repeatable)"),
    ] = None,
    created_from: Annotated[
        Instant | None,
        Query(description="Uploaded at or after (RFC 3339, with a time zone)"),
    ] = None,
    created_before: Annotated[
        Instant | None, Query(description="Uploaded before (RFC 3339, with a time zone)")
    ] = None,
    group: Annotated[
        Literal["document"] | None,
        Query(description="`document`: each document once, with its best chunks"),
    ] = None,
    group_size: Annotated[
        int, Query(ge=1, le=10, description="Chunks per document with `group=document`")
    ] = 3,
) -> SearchResults:
    """The tenant's chunks that match ``q`` (as ``mode`` says), with their documents'
    names; filtered (always within the tenant), or grouped by document, in any mode."""
    if not q.strip():
        raise Problem(422, "empty-query", "the query is blank; send some words to look for")
    options = SearchOptions(
        meta=tuple(meta or ()),
        filenames=tuple(filename or ()),
        document_ids=tuple(document_id or ()),
        created_from=created_from,
        created_before=created_before,
        group=group,
        group_size=group_size,
    )
    try:
        if options == SearchOptions(group_size=group_size):  # no filter, chunks: as before
            found = await find(q, tenant, limit, mode=mode)
        else:
            found = await find(q, tenant, limit, mode=mode, options=options)
    except KeywordsMissing as exc:
        raise Problem(409, "keywords-missing", str(exc)) from exc
    except SearchUnavailable as exc:
        raise unavailable("search", exc) from exc
    hits = found["hits"]
    names = await records.filenames(tenant, (UUID(h["document_id"]) for h in hits))
    answer = SearchResults(
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
    if group is not None:
        answer.documents = _documents(found.get("groups", []), names)
    return answer


def _documents(groups: list[dict[str, Any]], names: dict[UUID, str]) -> list[DocumentResult]:
    """The embedder's groups as documents, those the gateway knows (not deleted)."""
    documents = []
    for group in groups:
        document_id = UUID(group["document_id"])
        if document_id not in names or not group["hits"]:
            continue
        chunks = [SearchResult(**hit, filename=names[document_id]) for hit in group["hits"]]
        documents.append(
            DocumentResult(
                document_id=document_id,
                filename=names[document_id],
                score=max(chunk.score for chunk in chunks),
                chunks=chunks,
            )
        )
    return documents
