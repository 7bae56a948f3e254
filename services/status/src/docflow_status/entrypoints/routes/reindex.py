"""Re-embedding operations' progress (asked for with ``POST /v1/reindex`` on the gateway)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, Field

from docflow_shared.http import Problem, Tenant, problem_responses
from docflow_status.domain.reindexes import ReindexState, ReindexStatus
from docflow_status.entrypoints.deps import ReindexesDep
from docflow_status.entrypoints.problems import UNAUTHORIZED

router = APIRouter()


class ReindexOut(BaseModel):
    """A re-embedding operation: how far it got, and whether searches switched."""

    id: UUID
    status: ReindexStatus = Field(
        description="pending (not started by the embedder yet), running, completed, failed"
    )
    backend: str
    model: str
    dimensions: int | None
    documents: int | None = Field(description="How many documents were chosen; null: all")
    source: str | None = Field(description="The collection re-embedded from")
    target: str | None = Field(description="The collection re-embedded into")
    sweep: int = Field(description="1: re-embedding; 2: checking for chunks written meanwhile")
    done: int = Field(description="Chunks of the source read in this pass")
    total: int | None = Field(description="Chunks of the source when the pass began")
    embedded: int = Field(description="Chunks embedded into the target so far")
    progress: int = Field(ge=0, le=100)
    switched: bool = Field(description="Searches and new documents now use the target")
    message: str
    error: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @classmethod
    def of(cls, state: ReindexState) -> ReindexOut:
        return cls.model_validate(vars(state))


@router.get(
    "/v1/reindex/{reindex_id}",
    responses=problem_responses(
        {401: UNAUTHORIZED, 404: "No such re-embedding operation asked for by this tenant"}
    ),
)
async def get_reindex(reindex_id: str, reindexes: ReindexesDep, tenant: Tenant) -> ReindexOut:
    """A re-embedding operation's progress (``POST /v1/reindex`` on the gateway)."""
    try:
        parsed = UUID(reindex_id)
    except ValueError:
        parsed = None
    state = await reindexes.reindex(parsed, tenant) if parsed else None
    if state is None:
        raise Problem(
            404,
            "reindex-not-found",
            f"no re-embedding {reindex_id!r}; use the status_url POST /v1/reindex answered "
            "with (it appears here within moments)",
        )
    return ReindexOut.of(state)
