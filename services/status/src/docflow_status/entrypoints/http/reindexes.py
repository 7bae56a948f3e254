"""Re-embedding operations' progress (asked for with ``POST /v1/reindex`` on the gateway)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from docflow_shared.http import Problem, Tenant, problem_responses
from docflow_status.entrypoints.http.deps import Reindexes
from docflow_status.entrypoints.http.problems import UNAUTHORIZED
from docflow_status.entrypoints.http.schemas import ReindexOut

router = APIRouter()


@router.get(
    "/v1/reindex/{reindex_id}",
    responses=problem_responses(
        {401: UNAUTHORIZED, 404: "No such re-embedding operation asked for by this tenant"}
    ),
)
async def get_reindex(reindex_id: str, reindexes: Reindexes, tenant: Tenant) -> ReindexOut:
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
