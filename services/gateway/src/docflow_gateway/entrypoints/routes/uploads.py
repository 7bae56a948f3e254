"""``POST /v1/documents``: uploads."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from docflow_gateway import idempotency
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.domain.files import EmptyFileError, ReceivedFile, UnsupportedFileError
from docflow_gateway.entrypoints.deps import (
    BlobsDep,
    LinksDep,
    PublishDep,
    RateLimitedTenant,
    RecordsDep,
    SettingsDep,
    StatusLinks,
)
from docflow_gateway.entrypoints.multipart import (
    FILE_FIELD,
    METADATA_FIELD,
    Upload,
    UploadError,
    UploadLimits,
    receive_upload,
)
from docflow_gateway.entrypoints.problems import RETRY_AFTER_S
from docflow_gateway.handlers import Outcome, PublishError, accept_uploads
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import BlobStore, BlobStoreUnavailableError
from docflow_shared.events import ContentType
from docflow_shared.events.metadata import KEY_PATTERN, MAX_KEYS, MAX_LIST_ITEMS, Value
from docflow_shared.http import Problem, problem_responses
from docflow_shared.messaging import PublishAny

logger = logging.getLogger(__name__)

router = APIRouter()


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
                    },
                    METADATA_FIELD: {
                        "type": "object",
                        "description": "Optional metadata for every file of the request: a "
                        f"JSON object of at most {MAX_KEYS} keys (pattern `{KEY_PATTERN}`), "
                        "each value a string, number or boolean, or a list of at most "
                        f"{MAX_LIST_ITEMS} of those; at most DOCFLOW_MAX_METADATA_BYTES "
                        "(8 KiB) as sent. Returned by the status API; `/v1/search` and the "
                        "document list filter by it (`meta=key=value`).",
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "string"},
                                {"type": "number"},
                                {"type": "boolean"},
                                {
                                    "type": "array",
                                    "items": {
                                        "oneOf": [
                                            {"type": "string"},
                                            {"type": "number"},
                                            {"type": "boolean"},
                                        ]
                                    },
                                },
                            ]
                        },
                    },
                },
            },
            "encoding": {
                FILE_FIELD: {"contentType": "application/octet-stream"},
                METADATA_FIELD: {"contentType": "application/json"},
            },
        }
    },
}


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
            413: "A file or the metadata is over its size limit, or the request has too many files",
            415: (
                "A file is not PDF, Word, PowerPoint, Excel, EPUB, HTML, Markdown or text "
                "(by its bytes), or the body is not multipart"
            ),
            422: "No `file` part, an empty file, metadata that is not a flat JSON object of "
            "allowed keys and values (`invalid-metadata`), or a malformed request",
            429: "The tenant sent too many requests; see Retry-After",
            503: "Kafka or the blob store did not answer; nothing was kept, retry after "
            "Retry-After",
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
    settings: SettingsDep,
    blobs: BlobsDep,
    records: RecordsDep,
    publish: PublishDep,
    links: LinksDep,
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
    dedup = settings.dedup if dedup is None else dedup
    upload = await _receive(request, tenant, blobs, settings)
    files = upload.files
    accept = partial(
        _accept,
        files,
        metadata=upload.metadata,
        tenant_id=tenant,
        dedup=dedup,
        correlation_id=x_correlation_id or str(uuid4()),
        blobs=blobs,
        records=records,
        publish=publish,
        links=links,
    )
    try:
        answer = await idempotency.answer_once(
            idempotency_key,
            files,
            tenant_id=tenant,
            dedup=dedup,
            metadata=upload.metadata,
            records=records,
            blobs=blobs,
            handle=accept,
        )
    except idempotency.KeyReused as exc:
        raise Problem(409, "idempotency-key-reused", str(exc)) from exc
    except idempotency.KeyInUse as exc:
        raise Problem(
            409, "idempotency-key-in-use", str(exc), headers={"Retry-After": "1"}
        ) from exc
    if isinstance(answer, idempotency.Replayed):
        return _replay(answer)
    if len(answer.documents) == 1:
        response.headers["Location"] = answer.documents[0].status_url
    return answer


async def _receive(
    request: Request, tenant: str, blobs: BlobStore, settings: GatewaySettings
) -> Upload:
    """The request's files, each stored as it arrives and checked against the limits,
    and its metadata."""
    try:
        return await receive_upload(
            request.stream(),
            request.headers.get("content-type"),
            tenant_id=tenant,
            blobs=blobs,
            limits=UploadLimits(
                max_file_bytes=settings.max_file_bytes,
                max_files=settings.max_files_per_request,
                max_metadata_bytes=settings.max_metadata_bytes,
            ),
        )
    except UploadError as exc:
        raise Problem(exc.status, exc.code, str(exc), file=exc.filename) from exc
    except BlobStoreUnavailableError as exc:
        logger.warning("upload refused: %s", exc)  # its address is not the client's business
        raise Problem(
            503,
            "unavailable",
            "the blob store did not answer; nothing was kept, upload the files again",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from exc


def _answer(outcome: Outcome, links: StatusLinks) -> AcceptedDocument:
    return AcceptedDocument(
        id=outcome.document_id,
        filename=outcome.filename,
        content_type=outcome.content_type,
        size_bytes=outcome.size_bytes,
        sha256=outcome.sha256,
        status="duplicate" if outcome.duplicate else "pending",
        status_url=links.document(outcome.document_id),
    )


async def _accept(
    files: list[ReceivedFile],
    *,
    metadata: dict[str, Value] | None,
    tenant_id: str,
    dedup: bool,
    correlation_id: str,
    blobs: BlobStore,
    records: SqlRegistry,
    publish: PublishAny,
    links: StatusLinks,
) -> UploadAccepted:
    try:
        outcomes = await accept_uploads(
            files,
            metadata=metadata,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            dedup=dedup,
            blobs=blobs,
            registry=records,
            publish=publish,
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
            documents=[_answer(o, links).model_dump(mode="json") for o in exc.accepted],
        ) from exc
    return UploadAccepted(documents=[_answer(outcome, links) for outcome in outcomes])


def _replay(replayed: idempotency.Replayed) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    documents = replayed.body.get("documents", [])
    if len(documents) == 1:
        headers["Location"] = documents[0]["status_url"]
    return JSONResponse(replayed.body, status_code=replayed.status_code, headers=headers)
