"""The upload API over HTTP, with a recording publisher, a real blob store and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from docflow_shared.auth import hash_key
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import DocumentDeleted, DocumentUploaded
from support.gateway import PDF, ClientFor, Recorder, files_in


def test_one_file_is_accepted_with_a_status_link(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents", files={"file": ("report.pdf", PDF, "application/octet-stream")}
    )
    assert response.status_code == 202
    [doc] = response.json()["documents"]
    assert doc["filename"] == "report.pdf"
    assert doc["content_type"] == "application/pdf"
    assert doc["size_bytes"] == len(PDF)
    assert doc["status"] == "pending"
    assert doc["status_url"] == f"http://status.example:8001/v1/documents/{doc['id']}"
    assert response.headers["location"] == doc["status_url"]

    [event] = publish.events
    assert isinstance(event, DocumentUploaded)
    assert str(event.document_id) == doc["id"]
    assert event.sha256 == doc["sha256"]
    with LocalBlobStore(blob_root).open(event.blob_key) as stored:
        assert stored.read() == PDF


def test_several_files_in_one_request(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files=[
            ("file", ("a.pdf", PDF, "application/pdf")),
            ("file", ("b.md", b"# B\n", "text/markdown")),
        ],
    )
    assert response.status_code == 202
    docs = response.json()["documents"]
    assert [d["content_type"] for d in docs] == ["application/pdf", "text/markdown"]
    assert "location" not in response.headers
    assert len(publish.events) == 2
    assert len({e.correlation_id for e in publish.events}) == 1


def test_an_unsupported_file_is_a_415_problem_and_nothing_is_kept(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files=[
            ("file", ("a.pdf", PDF, "application/pdf")),
            ("file", ("x.png", b"\x89PNG\x00", "image/png")),
        ],
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "unsupported-media-type"
    assert problem["type"] == "urn:docflow:problem:unsupported-media-type"
    assert "x.png" in problem["detail"]
    assert publish.events == []
    assert files_in(blob_root) == []


def test_no_file_part_is_a_422_problem(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(blob_root, Recorder())
    response = client.post("/v1/documents", files={"other": (None, "x")})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed-request"
    assert "`file`" in response.json()["detail"]


def test_a_body_that_is_not_multipart_is_a_415_problem(
    blob_root: Path, client_for: ClientFor
) -> None:
    response = client_for(blob_root, Recorder()).post("/v1/documents", data={"file": "x"})
    assert response.status_code == 415
    assert response.json()["code"] == "not-multipart"


def test_an_empty_file_is_a_422_problem(blob_root: Path, client_for: ClientFor) -> None:
    response = client_for(blob_root, Recorder()).post(
        "/v1/documents", files={"file": ("empty.txt", b"", "text/plain")}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "empty-file"
    assert files_in(blob_root) == []


def test_when_kafka_does_not_acknowledge_it_is_503_and_the_file_is_removed(
    blob_root: Path, client_for: ClientFor
) -> None:
    response = client_for(blob_root, Recorder(fail=True)).post(
        "/v1/documents", files={"file": ("report.pdf", PDF, "application/pdf")}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["code"] == "unavailable"
    assert files_in(blob_root) == []


def test_when_kafka_takes_only_some_files_the_others_are_withdrawn(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder(refuse=frozenset({"b.md"}))
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files=[("file", ("a.pdf", PDF)), ("file", ("b.md", b"# B\n"))],
    )
    assert response.status_code == 503
    assert response.json()["documents"] == []
    uploaded, withdrawn = publish.events
    assert isinstance(uploaded, DocumentUploaded)
    assert isinstance(withdrawn, DocumentDeleted)
    assert withdrawn.document_id == uploaded.document_id
    assert files_in(blob_root) == []


def test_the_correlation_id_header_travels_in_the_event(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    client_for(blob_root, publish).post(
        "/v1/documents",
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers={"X-Correlation-ID": "req-42"},
    )
    assert publish.events[0].correlation_id == "req-42"


def test_probes_answer(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(blob_root, Recorder())
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_file_over_the_limit_is_a_413_problem_and_nothing_is_kept(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    client = client_for(blob_root, publish, max_file_bytes=1000)
    response = client.post(
        "/v1/documents",
        files=[
            ("file", ("ok.txt", b"fits", "text/plain")),
            ("file", ("big.txt", b"x" * 1001, "text/plain")),
        ],
    )
    assert response.status_code == 413
    problem = response.json()
    assert problem["code"] == "file-too-large"
    assert problem["file"] == "big.txt"
    assert "1000 bytes" in problem["detail"]
    assert publish.events == []
    assert files_in(blob_root) == []
    # Exactly at the limit is fine.
    ok = client.post("/v1/documents", files={"file": ("edge.txt", b"x" * 1000, "text/plain")})
    assert ok.status_code == 202


def test_too_many_files_is_a_413_problem(blob_root: Path, client_for: ClientFor) -> None:
    client = client_for(blob_root, Recorder(), max_files_per_request=2)
    files = [("file", (f"{i}.txt", f"text {i}".encode(), "text/plain")) for i in range(3)]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 413
    assert response.json()["code"] == "too-many-files"
    assert files_in(blob_root) == []


def test_a_body_cut_off_in_the_middle_is_a_422_problem_and_nothing_is_kept(
    blob_root: Path, client_for: ClientFor
) -> None:
    body = (
        b"--b\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\n"
        b"some text that never ends"
    )
    response = client_for(blob_root, Recorder()).post(
        "/v1/documents", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 422
    assert "closing boundary" in response.json()["detail"]
    assert files_in(blob_root) == []


def test_display_names_are_sanitized(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents",
        files={"file": ("../../etc/passwd.txt", b"hello", "text/plain")},
    )
    [doc] = response.json()["documents"]
    assert doc["filename"] == "passwd.txt"
    [event] = publish.events
    assert isinstance(event, DocumentUploaded)
    assert "passwd" not in event.blob_key


def test_legacy_encoded_text_is_accepted_with_its_charset(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents", files={"file": ("menu.txt", "Café crème".encode("cp1252"))}
    )
    assert response.status_code == 202
    [event] = publish.events
    assert isinstance(event, DocumentUploaded)
    assert event.charset == "cp1252"


def test_the_same_bytes_again_point_at_the_existing_document(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    client = client_for(blob_root, publish)
    first = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}).json()["documents"][0]

    again = client.post("/v1/documents", files={"file": ("renamed.pdf", PDF)})
    assert again.status_code == 202
    [dup] = again.json()["documents"]
    assert dup["status"] == "duplicate"
    assert dup["id"] == first["id"]
    assert dup["filename"] == "a.pdf"
    assert again.headers["location"] == first["status_url"]
    assert len(publish.events) == 1
    assert len(files_in(blob_root)) == 1

    # Switched off for one request, the same bytes become a new document.
    fresh = client.post("/v1/documents?dedup=false", files={"file": ("b.pdf", PDF)})
    [new] = fresh.json()["documents"]
    assert new["status"] == "pending"
    assert new["id"] != first["id"]
    assert len(publish.events) == 2


def test_duplicates_within_one_request_become_one_document(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    response = client_for(blob_root, publish).post(
        "/v1/documents", files=[("file", ("a.md", b"# A\n")), ("file", ("b.md", b"# A\n"))]
    )
    first, second = response.json()["documents"]
    assert (first["status"], second["status"]) == ("pending", "duplicate")
    assert first["id"] == second["id"]
    assert len(publish.events) == 1
    assert len(files_in(blob_root)) == 1


def test_dedup_is_per_tenant(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder()
    client = client_for(
        blob_root,
        publish,
        auth_enabled=True,
        api_keys={"acme": [hash_key("key-a")], "globex": [hash_key("key-g")]},
    )
    for key in ("key-a", "key-g"):
        response = client.post(
            "/v1/documents", files={"file": ("a.pdf", PDF)}, headers={"X-API-Key": key}
        )
        assert response.json()["documents"][0]["status"] == "pending"
    assert [e.tenant_id for e in publish.events] == ["acme", "globex"]


def test_an_idempotency_key_repeats_the_first_answer(
    blob_root: Path, client_for: ClientFor
) -> None:
    publish = Recorder()
    client = client_for(blob_root, publish, dedup=False)
    headers = {"Idempotency-Key": "upload-7"}
    first = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
    again = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(publish.events) == 1
    assert len(files_in(blob_root)) == 1

    other = client.post("/v1/documents", files={"file": ("b.md", b"# B\n")}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency-key-reused"
    assert len(publish.events) == 1
    assert len(files_in(blob_root)) == 1


def test_a_failed_request_frees_its_idempotency_key(blob_root: Path, client_for: ClientFor) -> None:
    publish = Recorder(fail=True)
    client = client_for(blob_root, publish)
    headers = {"Idempotency-Key": "k1"}
    assert (
        client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers).status_code
        == 503
    )
    publish.fail = False
    retried = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
    assert retried.status_code == 202
    assert len(publish.events) == 1


@pytest.fixture
def keys() -> dict[str, list[str]]:
    return {"acme": [hash_key("acme-secret")], "globex": [hash_key("globex-secret")]}


def test_with_auth_on_a_missing_or_unknown_key_is_401(
    blob_root: Path, client_for: ClientFor, keys: dict[str, list[str]]
) -> None:
    publish = Recorder()
    client = client_for(blob_root, publish, auth_enabled=True, api_keys=keys)
    for headers in ({}, {"X-API-Key": "guess"}, {"Authorization": "Bearer guess"}):
        response = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert publish.events == []
    assert files_in(blob_root) == []


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "globex-secret"}, {"Authorization": "Bearer globex-secret"}],
    ids=["x-api-key", "bearer"],
)
def test_the_key_decides_the_tenant_that_travels_in_the_event(
    blob_root: Path, client_for: ClientFor, keys: dict[str, list[str]], headers: dict[str, str]
) -> None:
    publish = Recorder()
    client = client_for(blob_root, publish, auth_enabled=True, api_keys=keys)
    response = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
    assert response.status_code == 202
    [event] = publish.events
    assert event.tenant_id == "globex"
    assert isinstance(event, DocumentUploaded)
    assert event.blob_key.startswith("globex/")


def test_a_tenant_over_its_rate_is_429_with_retry_after(
    blob_root: Path, client_for: ClientFor, keys: dict[str, list[str]]
) -> None:
    client = client_for(
        blob_root, Recorder(), auth_enabled=True, api_keys=keys, rate_limit="2/minute"
    )
    acme = {"X-API-Key": "acme-secret"}
    for i in range(2):
        assert (
            client.post(
                "/v1/documents", files={"file": (f"{i}.txt", f"{i}".encode())}, headers=acme
            ).status_code
            == 202
        )
    limited = client.post("/v1/documents", files={"file": ("3.txt", b"3")}, headers=acme)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate-limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another tenant has its own budget.
    other = client.post(
        "/v1/documents", files={"file": ("g.txt", b"g")}, headers={"X-API-Key": "globex-secret"}
    )
    assert other.status_code == 202


def test_a_file_part_without_a_filename_is_a_422_problem(
    blob_root: Path, client_for: ClientFor
) -> None:
    response = client_for(blob_root, Recorder()).post("/v1/documents", files={"file": (None, "x")})
    assert response.status_code == 422
    assert "no filename" in response.json()["detail"]
    assert files_in(blob_root) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "", "Authorization": "Bearer acme-secret"},
        {"X-API-Key": "acme-secret", "Authorization": "Basic YWNtZTpzZWNyZXQ="},
        {"X-API-Key": "acme-secret", "Authorization": "Bearer globex-secret"},
    ],
    ids=["empty-key-beside-a-good-one", "other-scheme", "two-tenants"],
)
def test_every_credential_sent_must_hold(
    blob_root: Path, client_for: ClientFor, keys: dict[str, list[str]], headers: dict[str, str]
) -> None:
    client = client_for(blob_root, Recorder(), auth_enabled=True, api_keys=keys)
    response = client.post("/v1/documents", files={"file": ("a.pdf", PDF)}, headers=headers)
    assert response.status_code == 401
