"""Retry, cancel and delete over HTTP: ownership, preconditions, events, blobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from docflow_shared.auth import hash_key
from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentRetryRequested,
    DocumentUploaded,
    Stage,
)
from support.gateway import PDF, ClientFor, Recorder, Statuses, files_in

KEYS = {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"X-API-Key": "globex-key"}


def status(
    state: str, stage: str, attempt: int = 1, error_stage: str | None = None
) -> dict[str, Any]:
    error = (
        {"code": "internal", "message": "boom", "stage": error_stage, "retryable": True}
        if error_stage
        else None
    )
    return {"status": state, "stage": stage, "attempt": attempt, "error": error}


@pytest.fixture
def setup(tmp_path: Path, client_for: ClientFor) -> tuple[TestClient, Recorder, Statuses, Path]:
    publish, statuses = Recorder(), Statuses()
    blobs = tmp_path / "blobs"
    client = client_for(blobs, publish, statuses, auth_enabled=True, api_keys=KEYS)
    return client, publish, statuses, blobs


def upload(client: TestClient, publish: Recorder) -> DocumentUploaded:
    response = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=ACME)
    assert response.status_code == 202
    event = publish.events[-1]
    assert isinstance(event, DocumentUploaded)
    return event


@pytest.mark.parametrize(
    ("error_stage", "resume_at"),
    [("embedding", Stage.EMBEDDING), ("extracting", Stage.EXTRACTING)],
)
def test_a_failed_document_is_retried_from_the_stage_that_failed(
    setup: tuple[TestClient, Recorder, Statuses, Path], error_stage: str, resume_at: Stage
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status("failed", error_stage, 1, error_stage)

    response = client.post(f"/v1/documents/{uploaded.document_id}/retry", headers=ACME)

    assert response.status_code == 202
    assert response.json()["attempt"] == 2
    assert response.json()["status_url"].endswith(str(uploaded.document_id))
    retried = publish.events[-1]
    assert isinstance(retried, DocumentRetryRequested)
    assert (retried.attempt, retried.from_stage) == (2, resume_at)
    assert (retried.blob_key, retried.content_type) == (uploaded.blob_key, uploaded.content_type)
    assert retried.tenant_id == "acme"


@pytest.mark.parametrize("state", ["pending", "processing", "completed"])
def test_only_failed_or_cancelled_documents_are_retried(
    setup: tuple[TestClient, Recorder, Statuses, Path], state: str
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status(state, "embedding")
    response = client.post(f"/v1/documents/{uploaded.document_id}/retry", headers=ACME)
    assert response.status_code == 409
    assert response.json()["code"] == "operation-not-allowed"
    assert state in response.json()["detail"]
    assert len(publish.events) == 1


def test_a_processing_document_is_cancelled_in_its_current_attempt(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status("processing", "embedding", attempt=3)
    response = client.post(f"/v1/documents/{uploaded.document_id}/cancel", headers=ACME)
    assert response.status_code == 202
    cancelled = publish.events[-1]
    assert isinstance(cancelled, DocumentCancelled)
    assert cancelled.attempt == 3


def test_a_document_not_yet_seen_by_the_status_service_can_be_cancelled(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, _, _ = setup
    uploaded = upload(client, publish)
    response = client.post(f"/v1/documents/{uploaded.document_id}/cancel", headers=ACME)
    assert response.status_code == 202
    assert isinstance(publish.events[-1], DocumentCancelled)


def test_a_finished_document_cannot_be_cancelled(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status("completed", "indexed")
    response = client.post(f"/v1/documents/{uploaded.document_id}/cancel", headers=ACME)
    assert response.status_code == 409


def test_a_deleted_document_loses_its_blobs_and_is_gone_for_the_gateway(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, _, blobs = setup
    uploaded = upload(client, publish)
    (blobs / "acme" / str(uploaded.document_id) / "chunks.jsonl").write_text("{}\n")

    response = client.delete(f"/v1/documents/{uploaded.document_id}", headers=ACME)

    assert response.status_code == 202
    assert response.json()["operation"] == "delete"
    assert isinstance(publish.events[-1], DocumentDeleted)
    assert files_in(blobs) == []
    again = client.delete(f"/v1/documents/{uploaded.document_id}", headers=ACME)
    assert again.status_code == 404
    # Its bytes are no longer a duplicate of anything.
    fresh = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=ACME)
    assert fresh.json()["documents"][0]["status"] == "pending"


@pytest.mark.parametrize(
    ("method", "suffix"), [("POST", "/retry"), ("POST", "/cancel"), ("DELETE", "")]
)
def test_another_tenants_or_an_unknown_document_is_404(
    setup: tuple[TestClient, Recorder, Statuses, Path], method: str, suffix: str
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status("failed", "extracting", 1, "extracting")
    for document_id, headers in ((uploaded.document_id, GLOBEX), (uuid4(), ACME)):
        response = client.request(method, f"/v1/documents/{document_id}{suffix}", headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "document-not-found"
    assert len(publish.events) == 1
    assert (
        client.request(method, f"/v1/documents/not-an-id{suffix}", headers=ACME).status_code == 422
    )


def test_operations_answer_503_when_the_status_service_or_kafka_is_down(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, statuses, blobs = setup
    uploaded = upload(client, publish)
    statuses.down = True
    response = client.post(f"/v1/documents/{uploaded.document_id}/cancel", headers=ACME)
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()

    statuses.down = False
    publish.fail = True
    response = client.delete(f"/v1/documents/{uploaded.document_id}", headers=ACME)
    assert response.status_code == 503
    # Nothing was removed, since the deletion was not announced.
    assert len(files_in(blobs)) == 1


@pytest.mark.parametrize(
    ("operation", "state"), [("retry", "failed"), ("cancel", "processing"), ("delete", None)]
)
def test_a_second_operation_on_the_same_attempt_is_409_while_the_status_lags(
    setup: tuple[TestClient, Recorder, Statuses, Path], operation: str, state: str | None
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    if state:
        statuses.by_id[uploaded.document_id] = status(state, "embedding", 1, "embedding")
    url = f"/v1/documents/{uploaded.document_id}"

    def ask() -> int:
        if operation == "delete":
            return client.delete(url, headers=ACME).status_code
        return client.post(f"{url}/{operation}", headers=ACME).status_code

    # The status service still shows attempt 1 as it was: only one may act on it.
    assert ask() == 202
    answers = [ask() for _ in range(3)]
    assert set(answers) <= {409, 404}  # a deleted document is gone: 404
    assert len(publish.events) == 2  # the upload, and one operation


def test_a_claim_whose_event_was_not_published_is_given_back(
    setup: tuple[TestClient, Recorder, Statuses, Path],
) -> None:
    client, publish, statuses, _ = setup
    uploaded = upload(client, publish)
    statuses.by_id[uploaded.document_id] = status("failed", "embedding", 1, "embedding")
    url = f"/v1/documents/{uploaded.document_id}"
    publish.fail = True
    assert client.post(f"{url}/retry", headers=ACME).status_code == 503
    assert client.delete(url, headers=ACME).status_code == 503
    publish.fail = False
    assert client.post(f"{url}/retry", headers=ACME).json()["attempt"] == 2
    assert client.delete(url, headers=ACME).status_code == 202
