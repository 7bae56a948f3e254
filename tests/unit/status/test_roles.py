"""The status service split in two processes: the API alone, the projector alone."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from fastapi.testclient import TestClient

from docflow_status.bootstrap import bootstrap
from docflow_status.settings import StatusSettings


def settings(tmp_path: Path, role: str) -> StatusSettings:
    return StatusSettings(
        status_role=role,
        data_dir=tmp_path,
        # Nothing listens there: the API alone must not need Kafka.
        kafka_bootstrap_servers="127.0.0.1:1",
    )


def test_the_api_alone_serves_from_the_database_without_kafka(tmp_path: Path) -> None:
    with TestClient(bootstrap(settings(tmp_path, "api"))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert set(ready.json()["checks"]) == {"database"}
        missing = client.get(f"/v1/documents/{uuid4()}")
        assert missing.status_code == 404
        assert missing.json()["code"] == "document-not-found"
        assert "docflow_documents_stalled" not in client.get("/metrics").text


def test_the_projector_alone_has_probes_and_metrics_but_no_api(tmp_path: Path) -> None:
    # Not started (that needs Kafka): the routes are what is checked.
    client = TestClient(bootstrap(settings(tmp_path, "projector")))
    assert client.get("/healthz").status_code == 200
    assert "docflow_documents_stalled" in client.get("/metrics").text
    assert client.get(f"/v1/documents/{uuid4()}").json()["code"] != "document-not-found"
    assert client.get("/openapi.json").json()["paths"].keys() <= {"/healthz", "/readyz", "/metrics"}
