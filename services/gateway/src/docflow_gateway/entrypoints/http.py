"""The gateway's HTTP API (DESIGN.md, "Gateway")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from docflow_gateway import operations
from docflow_gateway.adapters.registry import DocumentRecord, KeyState, SqlRegistry
from docflow_gateway.adapters.search_client import SearchUnavailable
from docflow_gateway.adapters.status_client import StatusUnavailable
from docflow_gateway.domain.files import EmptyFileError, ReceivedFile, UnsupportedFileError
from docflow_gateway.entrypoints.multipart import (
    FILE_FIELD,
    UploadError,
    UploadLimits,
    receive_files,
)
from docflow_gateway.entrypoints.ratelimit import TenantRateLimit
from docflow_gateway.entrypoints.web import add_page
from docflow_gateway.handlers import Outcome, PublishError, accept_uploads
from docflow_gateway.operations import OperationRefused, StatusReader
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import BlobStore
from docflow_shared.deadletters import DeadLetter, Selection
from docflow_shared.events import ContentType, EmbeddingSpec, ReindexRequested
from docflow_shared.http import Lifespan, Problem, Tenant, problem_responses, service_app
from docflow_shared.messaging import PublishAny
from docflow_shared.probes import Check

Search = Callable[[str, str, int], Awaitable[dict[str, Any]]]
ReadDeadLetters = Callable[[], Awaitable[list[DeadLetter]]]

# Seconds a client should wait before retrying when Kafka is unavailable.
RETRY_AFTER_S = 5


@dataclass
class Gateway:
    """Everything the HTTP layer needs, wired by ``bootstrap`` (or by tests)."""

    settings: GatewaySettings
    blobs: BlobStore
    records: SqlRegistry
    publish: PublishAny
    checks: Mapping[str, Check]
    registry: CollectorRegistry
    # The status service as seen by a caller (its credentials, given as headers).
    status_for: Callable[[Mapping[str, str]], StatusReader]
    # The embedder's search: (query, tenant, limit) → its answer.
    search: Search
    # Every message on the dead-letter topic.
    dead_letters: ReadDeadLetters
    # Starts and stops what the publisher needs (the Kafka producer, the database).
    lifespan: Lifespan | None = None
    rate_limit: TenantRateLimit = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limit = TenantRateLimit(self.settings.rate_limit)

    @property
    def limits(self) -> UploadLimits:
        return UploadLimits(
            max_file_bytes=self.settings.max_file_bytes,
            max_files=self.settings.max_files_per_request,
        )

    def status_url(self, document_id: UUID) -> str:
        base = str(self.settings.status_public_url).rstrip("/")
        return f"{base}/v1/documents/{document_id}"

    def reindex_url(self, reindex_id: UUID) -> str:
        base = str(self.settings.status_public_url).rstrip("/")
        return f"{base}/v1/reindex/{reindex_id}"


async def _gateway(request: Request) -> Gateway:
    # async: FastAPI runs a plain def dependency in a worker thread, on every request.
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _rate_limited(gateway: GatewayDep, tenant: Tenant) -> str:
    await gateway.rate_limit.check(tenant)
    return tenant


RateLimitedTenant = Annotated[str, Depends(_rate_limited)]


class AcceptedDocument(BaseModel):
    """A document docflow has stored and will process (or already has)."""

    id: UUID
    filename: str
    content_type: ContentType
    size_bytes: int
    sha256: str
    status: str = Field(
        description="`pending` for a new document; `duplicate` when the tenant already "
        "uploaded these bytes: `id` and `status_url` are then the existing document's"
    )
    status_url: str


class UploadAccepted(BaseModel):
    """The answer to an upload: one entry per file, in request order."""

    documents: list[AcceptedDocument]


def _answer(gateway: Gateway, outcome: Outcome) -> AcceptedDocument:
    return AcceptedDocument(
        id=outcome.document_id,
        filename=outcome.filename,
        content_type=outcome.content_type,
        size_bytes=outcome.size_bytes,
        sha256=outcome.sha256,
        status="duplicate" if outcome.duplicate else "pending",
        status_url=gateway.status_url(outcome.document_id),
    )


def _fingerprint(files: list[ReceivedFile], dedup: bool) -> str:
    """What makes two requests "the same" for an idempotency key: files and options."""
    described = [[f.filename, f.inspector.sha256, f.inspector.size] for f in files]
    return hashlib.sha256(json.dumps([described, dedup]).encode()).hexdigest()


_UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "format": "binary"},
                        "description": "One or more documents: PDF, Markdown or text",
                    }
                },
            },
            "encoding": {FILE_FIELD: {"contentType": "application/octet-stream"}},
        }
    },
}

router = APIRouter()


def _link(operation_id: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {"document_id": "$response.body#/documents/0/id"},
    }


_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: every file is stored and announced on Kafka",
        # The operations that act on an uploaded document (OpenAPI links).
        "links": {
            "RetryDocument": _link("retry_document"),
            "CancelDocument": _link("cancel_document"),
            "DeleteDocument": _link("delete_document"),
        },
    },
    **problem_responses(
        {
            401: "Authentication is on and no valid API key was sent",
            409: "The Idempotency-Key was used with a different request, or is in use",
            413: "A file is over the size limit, or the request has too many files",
            415: "A file is not PDF, Markdown or text, or the body is not multipart",
            422: "No `file` part, an empty file, or a malformed request",
            429: "The tenant sent too many requests; see Retry-After",
            503: "Kafka did not acknowledge; nothing was kept, retry after Retry-After",
        }
    ),
}


@router.post(
    "/v1/documents",
    status_code=202,
    response_model=UploadAccepted,
    operation_id="upload_documents",
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses=_UPLOAD_RESPONSES,
)
async def upload_documents(
    request: Request,
    response: Response,
    gateway: GatewayDep,
    tenant: RateLimitedTenant,
    dedup: Annotated[
        bool | None,
        Query(
            description="Point files the tenant already uploaded at that document "
            "(default: the gateway's setting, on)"
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a request safely: the same key and files give the first answer",
        ),
    ] = None,
    x_correlation_id: Annotated[str | None, Header(max_length=128)] = None,
) -> UploadAccepted | JSONResponse:
    """Accept documents for processing; answers once Kafka holds each one's event."""
    dedup = gateway.settings.dedup if dedup is None else dedup
    try:
        files = await receive_files(
            request.stream(),
            request.headers.get("content-type"),
            tenant_id=tenant,
            blobs=gateway.blobs,
            limits=gateway.limits,
        )
    except UploadError as exc:
        raise Problem(exc.status, exc.code, str(exc), file=exc.filename) from exc

    if idempotency_key is not None:
        claim = await gateway.records.claim_key(tenant, idempotency_key, _fingerprint(files, dedup))
        if claim.state is not KeyState.CLAIMED:
            for file in files:
                gateway.blobs.delete(file.blob_key)
        if claim.state is KeyState.REPLAY:
            return _replay(claim.status_code or 202, claim.response or {})
        if claim.state is KeyState.MISMATCH:
            raise Problem(
                409,
                "idempotency-key-reused",
                f"Idempotency-Key {idempotency_key!r} was used with different files or "
                "options; use a new key for a new request",
            )
        if claim.state is KeyState.IN_PROGRESS:
            raise Problem(
                409,
                "idempotency-key-in-use",
                f"a request with Idempotency-Key {idempotency_key!r} is still being handled; "
                "send this one again once it has been answered",
                headers={"Retry-After": "1"},
            )

    try:
        outcomes = await _accept(gateway, files, tenant, dedup, x_correlation_id)
    except BaseException:
        if idempotency_key is not None:
            await gateway.records.release_key(tenant, idempotency_key)
        raise
    answer = UploadAccepted(documents=[_answer(gateway, outcome) for outcome in outcomes])
    if idempotency_key is not None:
        await gateway.records.complete_key(
            tenant, idempotency_key, 202, answer.model_dump(mode="json")
        )
    if len(answer.documents) == 1:
        response.headers["Location"] = answer.documents[0].status_url
    return answer


async def _accept(
    gateway: Gateway,
    files: list[ReceivedFile],
    tenant: str,
    dedup: bool,
    correlation_id: str | None,
) -> list[Outcome]:
    try:
        return await accept_uploads(
            files,
            tenant_id=tenant,
            correlation_id=correlation_id or str(uuid4()),
            dedup=dedup,
            blobs=gateway.blobs,
            registry=gateway.records,
            publish=gateway.publish,
        )
    except UnsupportedFileError as exc:
        raise Problem(415, "unsupported-media-type", str(exc), file=exc.filename) from exc
    except EmptyFileError as exc:
        raise Problem(
            422, "empty-file", f"{exc}; upload a file with content", file=exc.filename
        ) from exc
    except PublishError as exc:
        raise Problem(
            503,
            "unavailable",
            f"the event store did not acknowledge {', '.join(map(repr, exc.failed))}; "
            "nothing was kept for those files, upload them again",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            documents=[_answer(gateway, o).model_dump(mode="json") for o in exc.accepted],
        ) from exc


class OperationAccepted(BaseModel):
    """An operation docflow accepted; its effect shows in the document's status."""

    id: UUID
    operation: str = Field(description="`retry`, `cancel` or `delete`")
    attempt: int | None = Field(
        description="The attempt a retry starts, or the one a cancel stops; null for delete"
    )
    status_url: str


_OPERATION_PROBLEMS = problem_responses(
    {
        401: "Authentication is on and no valid API key was sent",
        404: "No such document for this tenant",
        409: "The document's status does not allow this operation now",
        422: "Malformed request: an id that is not a UUID, an over-long header",
        429: "The tenant sent too many requests; see Retry-After",
        503: "Kafka or the status service is unavailable; retry after Retry-After",
    }
)


async def _own_document(gateway: Gateway, document_id: UUID, tenant: str) -> DocumentRecord:
    record = await gateway.records.get(document_id, tenant)
    if record is None:
        raise Problem(
            404,
            "document-not-found",
            f"no document {str(document_id)!r}; use the id the upload answered with",
        )
    return record


def _unavailable(what: str, exc: Exception) -> Problem:
    return Problem(
        503,
        "unavailable",
        f"{what} is unavailable ({exc}); nothing was done, send the request again",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _operate(
    gateway: Gateway,
    request: Request,
    document_id: UUID,
    tenant: str,
    name: str,
    correlation_id: str | None,
) -> OperationAccepted:
    record = await _own_document(gateway, document_id, tenant)
    correlation = correlation_id or str(uuid4())
    try:
        if name == "delete":
            await operations.delete(
                record,
                correlation_id=correlation,
                publish=gateway.publish,
                blobs=gateway.blobs,
                records=gateway.records,
            )
            attempt = None
        else:
            act = operations.retry if name == "retry" else operations.cancel
            event = await act(
                record,
                gateway.status_for(request.headers),
                correlation_id=correlation,
                publish=gateway.publish,
            )
            attempt = event.attempt
    except OperationRefused as exc:
        raise Problem(409, "operation-not-allowed", str(exc)) from exc
    except StatusUnavailable as exc:
        raise _unavailable("the status service", exc) from exc
    except Exception as exc:
        # The publish is the only other step that can fail (Kafka unavailable).
        raise _unavailable("the event store", exc) from exc
    return OperationAccepted(
        id=record.id, operation=name, attempt=attempt, status_url=gateway.status_url(record.id)
    )


class SearchResult(BaseModel):
    """A chunk of one of the tenant's documents that matches the query."""

    document_id: UUID
    filename: str
    chunk_index: int
    page: int | None = Field(description="The page the chunk starts on (PDF); null for text")
    page_end: int | None = Field(description="The page it ends on (PDF); null for text")
    score: float = Field(description="Cosine similarity to the query, higher is closer")
    text: str


class SearchResults(BaseModel):
    """Chunks of the tenant's documents, closest in meaning to the query first."""

    query: str
    model: str = Field(description="The embedding model that embedded the query and the chunks")
    results: list[SearchResult]


@router.get(
    "/v1/search",
    summary="Search the tenant's documents by meaning.",
    responses=problem_responses(
        {
            401: "Authentication is on and no valid API key was sent",
            422: "Malformed request: an empty or over-long query, a limit out of range",
            429: "The tenant sent too many requests; see Retry-After",
            503: "The embedder is unavailable; retry after Retry-After",
        }
    ),
)
async def search(
    gateway: GatewayDep,
    tenant: RateLimitedTenant,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResults:
    """The query is embedded with the model that embedded the chunks and compared
    with the tenant's chunks only."""
    if not q.strip():
        raise Problem(422, "empty-query", "the query is blank; send some words to look for")
    try:
        found = await gateway.search(q, tenant, limit)
    except SearchUnavailable as exc:
        raise _unavailable("search", exc) from exc
    hits = found["hits"]
    names = await gateway.records.filenames(tenant, (UUID(h["document_id"]) for h in hits))
    return SearchResults(
        query=q,
        model=found["model"],
        results=[
            SearchResult(**hit, filename=names[UUID(hit["document_id"])])
            for hit in hits
            # A document deleted a moment ago may still have vectors.
            if UUID(hit["document_id"]) in names
        ],
    )


CorrelationId = Annotated[str | None, Header(max_length=128)]


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
    responses=problem_responses(
        {
            400: "The body is not JSON",
            401: "Authentication is on and no valid API key was sent",
            403: "The tenant may not start operations over every tenant's data",
            422: "Malformed request: an unknown backend, an empty model name",
            429: "The tenant sent too many requests; see Retry-After",
            503: "Kafka is unavailable; nothing was started, retry after Retry-After",
        }
    ),
)
async def reindex(
    body: ReindexRequest,
    gateway: GatewayDep,
    tenant: RateLimitedTenant,
    x_correlation_id: CorrelationId = None,
) -> ReindexAccepted:
    """The chunks already in the vector store are embedded again with the new model
    into that model's collection, without extracting anything again. Searches use
    the current collection until the new one holds every chunk; then one alias
    switch makes the new one current for searches and new documents. The old
    collection is kept."""
    settings = gateway.settings
    if settings.auth_enabled and tenant not in settings.admin_tenants:
        raise Problem(
            403,
            "forbidden",
            f"tenant {tenant!r} may not re-embed every tenant's documents; "
            "an operator lists the tenants that may in DOCFLOW_ADMIN_TENANTS",
        )
    reindex_id = uuid4()
    try:
        await gateway.publish(
            ReindexRequested(
                reindex_id=reindex_id,
                tenant_id=tenant,
                correlation_id=x_correlation_id or str(uuid4()),
                embedding=body.embedding,
                document_ids=body.document_ids,
            )
        )
    except Exception as exc:
        raise _unavailable("the event store", exc) from exc
    return ReindexAccepted(reindex_id=reindex_id, status_url=gateway.reindex_url(reindex_id))


def _operation_endpoint(name: str, summary: str) -> Callable[..., Any]:
    async def endpoint(
        document_id: UUID,
        request: Request,
        gateway: GatewayDep,
        tenant: RateLimitedTenant,
        x_correlation_id: CorrelationId = None,
    ) -> OperationAccepted:
        return await _operate(gateway, request, document_id, tenant, name, x_correlation_id)

    endpoint.__doc__ = summary
    endpoint.__name__ = f"{name}_document"
    return endpoint


for _name, _method, _path, _summary in (
    (
        "retry",
        "POST",
        "/v1/documents/{document_id}/retry",
        "Process a failed or cancelled document again, from the stage where it stopped.",
    ),
    (
        "cancel",
        "POST",
        "/v1/documents/{document_id}/cancel",
        "Stop a pending or processing document; each stage stops at its next batch.",
    ),
    (
        "delete",
        "DELETE",
        "/v1/documents/{document_id}",
        "Delete a document: its file, chunks, vectors and status go (status then answers 404).",
    ),
):
    router.add_api_route(
        _path,
        _operation_endpoint(_name, _summary),
        methods=[_method],
        status_code=202,
        response_model=OperationAccepted,
        operation_id=f"{_name}_document",
        responses=_OPERATION_PROBLEMS,
    )


class DeadLetterOut(BaseModel):
    """A message a service could not handle, kept on the dead-letter topic."""

    document_id: UUID
    topic: str = Field(description="Where it was first published")
    service: str = Field(description="The service that gave up on it")
    stage: str
    error: str = Field(description="Why, last time")
    retries: int = Field(description="Retries it had before it was kept")
    dead_lettered_at: datetime


class DeadLetterList(BaseModel):
    """The tenant's dead-lettered messages, oldest first."""

    dead_letters: list[DeadLetterOut]


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
        422: "Malformed request",
        429: "The tenant sent too many requests; see Retry-After",
        503: "Kafka or the status service is unavailable; retry after Retry-After",
    }
)


async def _tenants_letters(gateway: Gateway, tenant: str, selection: Selection) -> list[DeadLetter]:
    try:
        letters = await gateway.dead_letters()
    except Exception as exc:
        raise _unavailable("the event store", exc) from exc
    return [
        letter
        for letter in letters
        if letter.document_id is not None
        and letter.tenant_id == tenant
        and selection.matches(letter)
    ]


@router.get("/v1/deadletters", responses=_DEAD_LETTER_PROBLEMS)
async def list_dead_letters(gateway: GatewayDep, tenant: RateLimitedTenant) -> DeadLetterList:
    """Messages about the tenant's documents that a service gave up on: after the
    last retry of a transient error, or because of an error of ours."""
    letters = await _tenants_letters(gateway, tenant, Selection())
    return DeadLetterList(
        dead_letters=[
            DeadLetterOut(
                document_id=letter.document_id,  # filtered above: not None
                topic=letter.topic,
                service=letter.service,
                stage=letter.stage,
                error=letter.error,
                retries=int(letter.headers.get("docflow-retries", "0")),
                dead_lettered_at=letter.at,
            )
            for letter in letters
        ]
    )


@router.post("/v1/deadletters/redrive", responses=_DEAD_LETTER_PROBLEMS)
async def redrive_dead_letters(
    body: RedriveRequest,
    request: Request,
    gateway: GatewayDep,
    tenant: RateLimitedTenant,
    x_correlation_id: CorrelationId = None,
) -> RedriveResult:
    """Once the cause is fixed: a new attempt of each dead-lettered document (one per
    document, however many of its messages were kept), from the stage that gave
    up. A document already retried, completed or deleted since is skipped."""
    selection = Selection(
        document_ids=body.document_ids,
        service=body.service,
        error_contains=body.error_contains,
        since=body.since,
    )
    letters = await _tenants_letters(gateway, tenant, selection)
    documents = list(dict.fromkeys(letter.document_id for letter in letters if letter.document_id))
    retried: list[Redriven] = []
    skipped: list[Skipped] = []
    correlation = x_correlation_id or str(uuid4())
    for document_id in documents:
        record = await gateway.records.get(document_id, tenant)
        if record is None:
            skipped.append(Skipped(id=document_id, reason="deleted"))
            continue
        if body.dry_run:
            retried.append(
                Redriven(id=document_id, attempt=None, status_url=gateway.status_url(document_id))
            )
            continue
        try:
            event = await operations.retry(
                record,
                gateway.status_for(request.headers),
                correlation_id=correlation,
                publish=gateway.publish,
            )
        except OperationRefused as exc:
            skipped.append(Skipped(id=document_id, reason=str(exc)))
            continue
        except StatusUnavailable as exc:
            raise _unavailable("the status service", exc) from exc
        except Exception as exc:
            raise _unavailable("the event store", exc) from exc
        retried.append(
            Redriven(
                id=document_id, attempt=event.attempt, status_url=gateway.status_url(document_id)
            )
        )
    return RedriveResult(dead_letters=len(letters), retried=retried, skipped=skipped)


def _replay(status_code: int, body: dict[str, Any]) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    documents = body.get("documents", [])
    if len(documents) == 1:
        headers["Location"] = documents[0]["status_url"]
    return JSONResponse(body, status_code=status_code, headers=headers)


def create_app(gateway: Gateway) -> FastAPI:
    """The gateway ASGI app around the given wiring."""
    app = service_app(
        title="docflow gateway",
        summary="Upload documents; follow each through its status link.",
        router=router,
        checks=gateway.checks,
        registry=gateway.registry,
        authenticator=gateway.settings.authenticator(),
        lifespan=gateway.lifespan,
        service="gateway",
    )
    app.state.gateway = gateway
    add_page(app, str(gateway.settings.status_public_url))
    return app
