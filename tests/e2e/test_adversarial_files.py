"""Files built to overload docflow, uploaded to the running system (the services
as processes on a real Kafka broker): each fails its own document with the
limit it hit named, and a good file uploaded after it still completes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docflow_local.stack import Stack
from support.corpus import REPO_ROOT
from support.stacks import running_stack
from support.waiting import wait_until

MiB = 1024 * 1024
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("adversarial") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "adversarial",
    ) as running:
        yield running


def _upload(http: httpx.Client, stack: Stack, name: str, data: bytes) -> dict[str, Any]:
    response = http.post(f"{stack.url('gateway')}/v1/documents", files={"file": (name, data)})
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.json()["documents"][0]
    return document


def _final(http: httpx.Client, document: dict[str, Any]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        response = http.get(document["status_url"])
        if response.status_code != 200:
            return None
        status: dict[str, Any] = response.json()
        return status if status["status"] in TERMINAL else None

    return wait_until(done, timeout_s=300, interval_s=0.5, what=f"{document['id']} finished")


def test_a_20_mb_text_file_fails_limit_exceeded_naming_the_limit(
    http: httpx.Client, stack: Stack
) -> None:
    line = b"The glacier moved a little further down the valley this year.\n"
    huge = _upload(http, stack, "glaciers.txt", line * (20 * MiB // len(line)))
    fine = _upload(http, stack, "note.txt", line * 20)

    failed = _final(http, huge)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "limit_exceeded"
    assert "DOCFLOW_MAX_TEXT_BYTES" in failed["error"]["message"]
    assert _final(http, fine)["status"] == "completed"
