"""The four services on the secured broker (support/secured_kafka.py), each with
its own principal and only its own ACLs: the gateway, the embedder and the
status service with SCRAM-SHA-512 over TLS, the extractor with its client
certificate (mutual TLS). A document goes all the way to ``completed``, and
the status service's lag gauge reads the other services' groups."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from support.corpus import REPO_ROOT
from support.secured_kafka import SecuredKafka, environment
from support.waiting import wait_until


@pytest.fixture(scope="module")
def stack(
    secured_kafka_broker: SecuredKafka, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    kafka = secured_kafka_broker
    env = {
        "gateway": environment(kafka.sasl_ssl, kafka.scram("docflow-gateway")),
        "status": environment(kafka.sasl_ssl, kafka.scram("docflow-status"))
        | {"DOCFLOW_WATCHDOG_EVERY_S": "1"},
        "extractor": environment(kafka.ssl, kafka.mtls("docflow-extractor")),
        "embedder": environment(kafka.sasl_ssl, kafka.scram("docflow-embedder")),
    }
    chosen = [
        dataclasses.replace(service, env=tuple(env[service.name].items()))
        for service in services(free_port(), free_port(), free_port(), free_port())
    ]
    running = Stack(
        # Each service's own listener is in its environment (above).
        kafka_bootstrap_servers=kafka.sasl_ssl,
        data_dir=tmp_path_factory.mktemp("secured-stack") / "data",
        services=chosen,
        log_dir=REPO_ROOT / ".artifacts" / "e2e" / "logs" / "secured-kafka",
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_document_completes_with_every_service_on_its_own_principal(
    http: httpx.Client, stack: Stack
) -> None:
    text = b"Glaciers retreat when summers melt more ice than winters bring.\n" * 20
    response = http.post(
        f"{stack.url('gateway')}/v1/documents", files={"file": ("glaciers.txt", text)}
    )
    assert response.status_code == 202, response.text
    document = response.json()["documents"][0]

    def finished() -> dict[str, object] | None:
        answer = http.get(document["status_url"])
        status: dict[str, object] = answer.json() if answer.status_code == 200 else {}
        return status if status.get("status") in ("completed", "failed") else None

    final = wait_until(finished, timeout_s=180, interval_s=0.5, what="the document finished")
    assert final["status"] == "completed", final

    # The lag gauge, computed by the status service with its principal.
    def lag_reported() -> str | None:
        metrics = http.get(f"{stack.url('status')}/metrics").text
        line = 'docflow_consumer_lag_messages{group="docflow-embedder"}'
        return next((row for row in metrics.splitlines() if row.startswith(line)), None)

    row = wait_until(lag_reported, timeout_s=60, interval_s=0.5, what="the lag gauge")
    assert float(row.split()[-1]) >= 0
