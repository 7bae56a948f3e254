"""/metrics on a port of its own (DOCFLOW_METRICS_PORT): served there while the
app runs and gone from the app's own port, closed when the app stops; settings
that cannot work are refused at start."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from docflow_gateway.settings import GatewaySettings
from docflow_local.processes import free_port
from docflow_shared.probes import metrics_server
from docflow_status.bootstrap import bootstrap
from docflow_status.settings import StatusSettings


def test_the_status_api_serves_metrics_only_on_its_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    settings = StatusSettings(
        status_role="api",
        data_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:1",  # the API alone needs no Kafka
        metrics_port=port,
    )
    assert settings.metrics_address == ("127.0.0.1", port)
    with TestClient(bootstrap(settings)) as client:
        assert client.get("/healthz").status_code == 200
        client.get("/v1/documents")  # one counted request
        assert client.get("/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert 'http_requests_total{handler="/v1/documents"' in scraped.text
    # Stopped with the app: nothing listens any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_without_a_metrics_port_metrics_stay_on_the_services_port(tmp_path: Path) -> None:
    settings = StatusSettings(
        status_role="api", data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"
    )
    assert settings.metrics_address is None
    with TestClient(bootstrap(settings)) as client:
        assert "http_requests_total" in client.get("/metrics").text


def test_a_taken_metrics_port_fails_the_start_naming_the_setting() -> None:
    registry = CollectorRegistry()
    Counter("docflow_probe_test", "a counter", registry=registry).inc()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="DOCFLOW_METRICS_PORT"):
            metrics_server(registry, "127.0.0.1", port)
    port = free_port()
    stop = metrics_server(registry, "127.0.0.1", port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "docflow_probe_test_total 1.0" in text
    finally:
        stop()


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValidationError, match="DOCFLOW_METRICS_PORT=8000 is DOCFLOW_PORT"):
        StatusSettings(port=8000, metrics_port=8000)
    with pytest.raises(ValidationError, match="DOCFLOW_METRICS_PORT needs DOCFLOW_WORKERS=1"):
        GatewaySettings(metrics_port=9000, workers=2)
    assert GatewaySettings(metrics_port=9000).metrics_address == ("127.0.0.1", 9000)
    assert StatusSettings(metrics_port="").metrics_port is None  # a chart's empty value
