"""An upload's ``metadata`` part: carried in the events, kept for retries, refused with
a problem naming what is wrong (and then nothing of the request is kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from docflow_shared.events import DocumentRetryRequested, DocumentUploaded
from support.gateway import PDF, ClientFor, Recorder, Statuses, files_in

META = {"project": "apollo", "year": 2024, "draft": False, "tags": ["a", "b"]}


def _post(client: Any, metadata: bytes | str | None, **headers: str) -> Any:
    files: list[tuple[str, Any]] = [
        ("file", ("a.pdf", PDF, "application/pdf")),
        ("file", ("b.md", b"# B\n", "text/markdown")),
    ]
    if metadata is not None:
        # A form field (no file name), as curl -F 'metadata={...}' sends it.
        files.append(("metadata", (None, metadata, "application/json")))
    return client.post("/v1/documents", files=files, headers=headers)


def test_metadata_goes_with_every_file_of_the_request(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    response = _post(client_for(blob_root, publish), json.dumps(META))
    assert response.status_code == 202, response.text
    assert [e.metadata for e in publish.events] == [META, META]
    assert all(isinstance(e, DocumentUploaded) for e in publish.events)


def test_metadata_sent_as_a_file_part_is_read_too(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files=[
            ("metadata", ("meta.json", json.dumps({"k": "v"}).encode(), "application/json")),
            ("file", ("a.pdf", PDF, "application/pdf")),
        ],
    )
    assert response.status_code == 202, response.text
    assert publish.events[0].metadata == {"k": "v"}  # type: ignore[attr-defined]


def test_without_metadata_there_is_none(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    assert _post(client_for(blob_root, publish), None).status_code == 202
    assert [e.metadata for e in publish.events] == [None, None]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("metadata", "status", "code", "named"),
    [
        (json.dumps({"a": {"b": 1}}), 422, "invalid-metadata", "nested too deep"),
        (json.dumps({"a": None}), 422, "invalid-metadata", "null is not a value"),
        (json.dumps({"bad key": 1}), 422, "invalid-metadata", "'bad key' is not allowed"),
        (json.dumps([1, 2]), 422, "invalid-metadata", "must be a JSON object"),
        ("{oops", 422, "invalid-metadata", "not valid JSON"),
        (json.dumps({"a": "x" * 9000}), 413, "metadata-too-large", "limit of 8192 bytes"),
    ],
)
def test_bad_metadata_is_a_problem_naming_it_and_nothing_is_kept(
    blob_root: Path,
    client_for: ClientFor,
    metadata: str,
    status: int,
    code: str,
    named: str,
) -> None:
    publish = Recorder()
    response = _post(client_for(blob_root, publish), metadata)
    assert response.status_code == status
    problem = response.json()
    assert problem["type"].endswith(code), problem
    assert named in problem["detail"]
    assert publish.events == []
    assert files_in(blob_root) == []


def test_the_size_limit_is_a_setting(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(blob_root, Recorder(), max_metadata_bytes=64)
    response = _post(client, json.dumps({"a": "x" * 100}))
    assert response.status_code == 413
    assert "64 bytes" in response.json()["detail"]


def test_one_metadata_part_per_request(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files=[
            ("metadata", (None, b'{"a": 1}', "application/json")),
            ("metadata", (None, b'{"b": 1}', "application/json")),
            ("file", ("a.pdf", PDF, "application/pdf")),
        ],
    )
    assert response.status_code == 422
    assert "more than one `metadata` part" in response.json()["detail"]
    assert files_in(blob_root) == []


def test_an_idempotency_key_with_other_metadata_is_another_request(
    blob_root: Path, client_for: ClientFor
) -> None:
    client = client_for(blob_root, Recorder())
    first = _post(client, json.dumps(META), **{"Idempotency-Key": "k1"})
    again = _post(client, json.dumps(META), **{"Idempotency-Key": "k1"})
    other = _post(client, json.dumps({"project": "gemini"}), **{"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 409


def test_a_retry_carries_the_uploads_metadata_and_time(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish, statuses = Recorder(), Statuses()
    client = client_for(blob_root, publish, statuses)
    assert _post(client, json.dumps(META)).status_code == 202
    uploaded = publish.events[0]
    assert isinstance(uploaded, DocumentUploaded)
    statuses.by_id[uploaded.document_id] = {
        "status": "failed",
        "stage": "extracting",
        "attempt": 1,
        "error": {"code": "internal", "message": "x", "stage": "extracting", "retryable": True},
    }
    assert client.post(f"/v1/documents/{uploaded.document_id}/retry").status_code == 202
    retried = publish.events[-1]
    assert isinstance(retried, DocumentRetryRequested)
    assert retried.metadata == META
    facts = retried.facts
    assert facts is not None
    assert facts.filename == "a.pdf"
    # The time of the upload, as the gateway recorded it (to the database's precision).
    assert abs((facts.uploaded_at - uploaded.occurred_at).total_seconds()) < 0.001
