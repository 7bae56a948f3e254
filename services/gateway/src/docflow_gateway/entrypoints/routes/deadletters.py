"""``/v1/deadletters``: the tenant's dead letters, and re-driving them (``redrive``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from docflow_gateway.adapters.deadletter_index import CURSOR_PATTERN, decode_cursor
from docflow_gateway.adapters.status_client import StatusUnavailable
from docflow_gateway.entrypoints.deps import (
    CorrelationId,
    DeadLettersDep,
    LinksDep,
    PublishDep,
    RateLimitedTenant,
    RecordsDep,
    StatusDep,
)
from docflow_gateway.entrypoints.problems import unavailable
from docflow_gateway.redrive import EventStoreUnavailable, redrive
from docflow_shared.deadletters import Selection
from docflow_shared.http import problem_responses

router = APIRouter()


class DeadLetterOut(BaseModel):
    """A message a service could not handle, kept on the dead-letter topic."""

    document_id: UUID
    topic: str = Field(description="Where it was first published")
    service: str = Field(description="The service that gave up on it")
    stage: str
    error: str = Field(description="Why, last time")
    retries: int = Field(description="Retries it had before it was kept")
    dead_lettered_at: datetime
    partition: int = Field(description="Where it is on docflow.deadletter.v1 (with offset)")
    offset: int


class DeadLetterList(BaseModel):
    """One page of the tenant's dead-lettered messages, oldest first."""

    dead_letters: list[DeadLetterOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class RedriveRequest(BaseModel):
    """Which of the tenant's dead-lettered documents to start again; all when empty."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=10_000)
    service: Literal["extractor", "embedder"] | None = None
    error_contains: str | None = Field(default=None, min_length=1, max_length=500)
    since: AwareDatetime | None = Field(default=None, description="Dead-lettered at or after")
    dry_run: bool = Field(default=False, description="Say what would be started; start nothing")


class Redriven(BaseModel):
    id: UUID
    attempt: int | None = Field(description="The attempt started; null in a dry run")
    status_url: str


class Skipped(BaseModel):
    id: UUID
    reason: str


class RedriveResult(BaseModel):
    """What the re-drive did: a new attempt per document, or why not."""

    dead_letters: int = Field(description="The tenant's dead letters that matched")
    retried: list[Redriven]
    skipped: list[Skipped]


_DEAD_LETTER_PROBLEMS = problem_responses(
    {
        401: "Authentication is on and no valid API key was sent",
        413: "The body is over DOCFLOW_MAX_JSON_BYTES",
        422: "Malformed request: a limit outside 1-500, a cursor not of the form next_cursor has",
        429: "The tenant sent too many requests; see Retry-After",
        503: "Kafka or the status service is unavailable; retry after Retry-After",
    }
)


@router.get(
    "/v1/deadletters",
    description="Messages about the tenant's documents that a service gave up on: after the\n"
    "last retry of a transient error, or because of an error of ours. Read from the\n"
    "gateway's index of the dead-letter topic, a page at a time (oldest first).",
    responses=_DEAD_LETTER_PROBLEMS,
)
async def list_dead_letters(
    dead_letters: DeadLettersDep,
    tenant: RateLimitedTenant,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
    ] = None,
) -> DeadLetterList:
    """The tenant's dead letters, oldest first, a page at a time, from the gateway's
    index of the dead-letter topic (never the topic itself)."""
    await dead_letters.caught_up()
    try:
        page = await dead_letters.index.page(
            tenant, limit, decode_cursor(cursor) if cursor else None
        )
    except Exception as exc:
        raise unavailable("the dead-letter index", exc) from exc
    return DeadLetterList(
        dead_letters=[
            DeadLetterOut(
                document_id=letter.document_id,  # indexed with its tenant: not None
                topic=letter.topic,
                service=letter.service,
                stage=letter.stage,
                error=letter.error,
                retries=letter.retries,
                dead_lettered_at=letter.dead_lettered_at,
                partition=letter.partition,
                offset=letter.offset,
            )
            for letter in page.letters
        ],
        next_cursor=page.next,
    )


@router.post(
    "/v1/deadletters/redrive",
    description="Once the cause is fixed: a new attempt of each dead-lettered document (one per\n"
    "document, however many of its messages were kept), from the stage that gave\n"
    "up. A document already retried, completed or deleted since is skipped.",
    responses=_DEAD_LETTER_PROBLEMS,
)
async def redrive_dead_letters(
    body: RedriveRequest,
    dead_letters: DeadLettersDep,
    records: RecordsDep,
    status: StatusDep,
    publish: PublishDep,
    links: LinksDep,
    tenant: RateLimitedTenant,
    x_correlation_id: CorrelationId = None,
) -> RedriveResult:
    """Retry the tenant's dead-lettered documents that ``body`` selects."""
    selection = Selection(
        document_ids=body.document_ids,
        service=body.service,
        error_contains=body.error_contains,
        since=body.since,
    )
    try:
        done = await redrive(
            selection,
            tenant_id=tenant,
            correlation_id=x_correlation_id or str(uuid4()),
            dry_run=body.dry_run,
            dead_letters=dead_letters,
            records=records,
            status=status,
            publish=publish,
        )
    except StatusUnavailable as exc:
        raise unavailable("the status service", exc) from exc
    except EventStoreUnavailable as exc:
        raise unavailable("the dead-letter index or Kafka", exc) from exc
    return RedriveResult(
        dead_letters=done.dead_letters,
        retried=[
            Redriven(id=r.document_id, attempt=r.attempt, status_url=links.document(r.document_id))
            for r in done.retried
        ],
        skipped=[Skipped(id=s.document_id, reason=s.reason) for s in done.skipped],
    )
