"""The running gateway while its Kafka broker is stopped and started again.

This module runs its own broker (from the jars), since it stops it: uploads
answer 503 with Retry-After and leave no file behind while Kafka is down, and
are accepted again once it is back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared import topics
from docflow_shared.events import parse_event
from docflow_shared.kafka_admin import ensure_topics, read_topic
from docflow_shared.topics import specs
from support.corpus import REPO_ROOT
from support.waiting import wait_until

PUBLISH_TIMEOUT_S = 3
ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("kafka-down"),
        port=free_port(),
        controller_port=free_port(),
        libs=ensure_jars(),
    )
    with broker:
        asyncio.run(ensure_topics(broker.bootstrap_servers, specs()))
        yield broker


@pytest.fixture(scope="module")
def gateway(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=tmp_path_factory.mktemp("kafka-down-gateway") / "data",
        services=services(free_port())[:1],
        log_dir=ARTIFACTS / "logs" / "kafka-down",
        extra_env={"DOCFLOW_PUBLISH_TIMEOUT_S": str(PUBLISH_TIMEOUT_S)},
    )
    running.start()
    yield running
    running.stop()


def _blobs(stack: Stack) -> list[Path]:
    return [p for p in (stack.data_dir / "blobs").rglob("*") if p.is_file()]


def _upload(http: httpx.Client, stack: Stack, name: str) -> httpx.Response:
    return http.post(
        f"{stack.url('gateway')}/v1/documents",
        files={"file": (name, f"# {name}\n\n{time.time_ns()}\n".encode())},
    )


def test_uploads_are_refused_with_503_while_kafka_is_down_and_nothing_is_left(
    kafka: LocalKafka, gateway: Stack
) -> None:
    with httpx.Client(timeout=60) as http:
        assert _upload(http, gateway, "before.md").status_code == 202
        kept = _blobs(gateway)

        kafka.stop()
        started = time.monotonic()
        refused = _upload(http, gateway, "during.md")
        waited = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "unavailable"
        assert int(refused.headers["retry-after"]) > 0
        assert "during.md" in refused.json()["detail"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "kafka-down.json").write_text(
            json.dumps({"publish_timeout_s": PUBLISH_TIMEOUT_S, "seconds_to_503": waited})
        )
        assert _blobs(gateway) == kept
        assert http.get(f"{gateway.url('gateway')}/readyz").status_code == 503

        kafka.start()
        wait_until(lambda: _upload(http, gateway, "after.md").status_code == 202, timeout_s=60)
        assert len(_blobs(gateway)) == len(kept) + 1

    # The refused upload was not delivered late either: Kafka holds exactly
    # the accepted ones.
    announced = asyncio.run(read_topic(kafka.bootstrap_servers, topics.UPLOADED))
    filenames = sorted(parse_event(value).filename for value in announced)  # type: ignore[union-attr]
    assert filenames == ["after.md", "before.md"]
