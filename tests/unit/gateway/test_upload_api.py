"""The upload API over HTTP, with a recording publisher and a real blob store."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from docflow_gateway.entrypoints.http import Gateway, create_app
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import DocumentUploaded, Event

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[Event] = []
        self.fail = fail

    async def __call__(self, event: Event) -> None:
        if self.fail:
            raise ConnectionError("Kafka did not acknowledge")
        self.events.append(event)


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


def client_for(blob_root: Path, publish: Recorder) -> TestClient:
    gateway = Gateway(
        settings=GatewaySettings(status_public_url="http://status.example:8001/"),
        blobs=LocalBlobStore(blob_root),
        publish=publish,
        checks={},
        registry=CollectorRegistry(),
    )
    return TestClient(create_app(gateway))


def test_one_file_is_accepted_with_a_status_link(blob_root: Path) -> None:
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


def test_several_files_in_one_request(blob_root: Path) -> None:
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


def test_an_unsupported_file_is_a_415_problem_and_nothing_is_kept(blob_root: Path) -> None:
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


def test_no_file_part_is_a_422_problem(blob_root: Path) -> None:
    response = client_for(blob_root, Recorder()).post("/v1/documents", data={"other": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "malformed-request"


def test_an_empty_file_is_a_422_problem(blob_root: Path) -> None:
    response = client_for(blob_root, Recorder()).post(
        "/v1/documents", files={"file": ("empty.txt", b"", "text/plain")}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "empty-file"
    assert files_in(blob_root) == []


def test_when_kafka_does_not_acknowledge_it_is_503_and_the_file_is_removed(blob_root: Path) -> None:
    response = client_for(blob_root, Recorder(fail=True)).post(
        "/v1/documents", files={"file": ("report.pdf", PDF, "application/pdf")}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["code"] == "unavailable"
    assert files_in(blob_root) == []


def test_the_correlation_id_header_travels_in_the_event(blob_root: Path) -> None:
    publish = Recorder()
    client_for(blob_root, publish).post(
        "/v1/documents",
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers={"X-Correlation-ID": "req-42"},
    )
    assert publish.events[0].correlation_id == "req-42"


def test_probes_answer(blob_root: Path) -> None:
    client = client_for(blob_root, Recorder())
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
