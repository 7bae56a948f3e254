"""``POST /v1/reindex``: re-embedding every stored chunk with another model."""

from __future__ import annotations

from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from docflow_gateway.entrypoints.deps import (
    CorrelationId,
    LinksDep,
    PublishDep,
    RateLimitedTenant,
    SettingsDep,
)
from docflow_gateway.entrypoints.problems import unavailable
from docflow_shared.events import EmbeddingSpec, ReindexRequested
from docflow_shared.http import Problem, problem_responses

router = APIRouter()


class ReindexRequest(BaseModel):
    """Which model to re-embed with, and optionally which documents."""

    model_config = ConfigDict(extra="forbid")

    embedding: EmbeddingSpec = Field(
        description="`local` has one model, sentence-transformers/all-MiniLM-L6-v2; `openai` "
        "takes any model of the embedder's OpenAI-compatible endpoint (`dimensions` for "
        "models that can shorten their vectors, or that the embedder does not know)"
    )
    document_ids: list[UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Only these documents (any tenant's); all when absent. The switch "
        "waits until the new collection holds every chunk of the current one.",
    )


class ReindexAccepted(BaseModel):
    """A re-embedding docflow will carry out; follow it at ``status_url``."""

    reindex_id: UUID
    status_url: str


@router.post(
    "/v1/reindex",
    status_code=202,
    summary="Re-embed every stored chunk (or chosen documents') with another model.",
    description="The chunks already in the vector store are embedded again with the new model\n"
    "into that model's collection, without extracting anything again. Searches use\n"
    "the current collection until the new one holds every chunk; then one alias\n"
    "switch makes the new one current for searches and new documents. The old\n"
    "collection is kept.",
    responses=problem_responses(
        {
            400: "The body is not JSON",
            401: "Authentication is on and no valid API key was sent",
            403: "The tenant may not start operations over every tenant's data",
            413: "The body is over DOCFLOW_MAX_JSON_BYTES",
            422: "Malformed request: an unknown backend, an empty model name",
            429: "The tenant sent too many requests; see Retry-After",
            503: "Kafka is unavailable; nothing was started, retry after Retry-After",
        }
    ),
)
async def reindex(
    body: ReindexRequest,
    settings: SettingsDep,
    publish: PublishDep,
    links: LinksDep,
    tenant: RateLimitedTenant,
    x_correlation_id: CorrelationId = None,
) -> ReindexAccepted:
    """Announce a re-embedding (an admin tenant's, when authentication is on)."""
    if settings.auth_enabled and tenant not in settings.admin_tenants:
        raise Problem(
            403,
            "forbidden",
            f"tenant {tenant!r} may not re-embed every tenant's documents; "
            "an operator lists the tenants that may in DOCFLOW_ADMIN_TENANTS",
        )
    reindex_id = uuid4()
    try:
        await publish(
            ReindexRequested(
                reindex_id=reindex_id,
                tenant_id=tenant,
                correlation_id=x_correlation_id or str(uuid4()),
                embedding=body.embedding,
                document_ids=body.document_ids,
            )
        )
    except Exception as exc:
        raise unavailable("the event store", exc) from exc
    return ReindexAccepted(reindex_id=reindex_id, status_url=links.reindex(reindex_id))
