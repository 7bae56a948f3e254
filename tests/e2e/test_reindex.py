"""Re-embedding through the running system: the four services as processes on a real
Kafka broker, the local model first, then an OpenAI-compatible endpoint (a local test
server, tests/support/openai_server.py) asked for by the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_local.stack import Stack
from docflow_shared import topics
from docflow_shared.events import TextExtracted
from docflow_shared.kafka_admin import read_topic
from support.corpus import REPO_ROOT, expectations
from support.openai_server import KEY, EmbeddingsServer
from support.stacks import readable_events, running_stack
from support.waiting import wait_until

NEW_MODEL = "test-embedder"
DIMENSIONS = 8
FIRST = [
    "000_e21e99f4fa213ba2.md",
    "001_1dec86223de1c3fb.md",
    "002-trivial-libre-office-writer.pdf",
]
LATER = "003_a19fe08ef10adc87.md"


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, server: EmbeddingsServer
) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("reindex") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "reindex",
        # The local model embeds first; the endpoint is there for the reindex.
        extra_env={"DOCFLOW_OPENAI_API_KEY": KEY, "DOCFLOW_OPENAI_BASE_URL": server.url},
    ) as running:
        yield running


def _completed(http: httpx.Client, stack: Stack, names: list[str]) -> list[dict[str, Any]]:
    paths = {e.path.name: e.path for e in expectations()}
    files = [("file", (name, paths[name].read_bytes())) for name in names]
    response = http.post(f"{stack.url('gateway')}/v1/documents", files=files)
    assert response.status_code == 202, response.text

    def finished(doc: dict[str, Any]) -> dict[str, Any] | None:
        status = http.get(doc["status_url"])
        if status.status_code == 200 and status.json()["status"] == "completed":
            body: dict[str, Any] = status.json()
            return body
        return None

    return [
        wait_until(lambda d=doc: finished(d), timeout_s=180, interval_s=0.2, what=doc["filename"])
        for doc in response.json()["documents"]
    ]


def _search(
    http: httpx.Client, stack: Stack, query: str, limit: int = 5, mode: str = "dense"
) -> dict[str, Any]:
    """Dense by default: these tests follow which model's vectors answer (the test
    endpoint's vectors come from each text's hash, so only dense search tells)."""
    params: dict[str, Any] = {"q": query, "limit": limit, "mode": mode}
    response = http.get(f"{stack.url('gateway')}/v1/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _reindex(stack: Stack, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docflow_gateway", "reindex", "--json", *arguments],
        env={**os.environ, "DOCFLOW_GATEWAY_URL": stack.url("gateway")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def switched(stack: Stack, http: httpx.Client, server: EmbeddingsServer) -> dict[str, Any]:
    """The first documents indexed by the local model, then re-embedded by the CLI."""
    documents = _completed(http, stack, FIRST)
    before = _search(http, stack, "asynchronous document processing")
    assert before["model"] == MiniLMEmbedder.model
    requests_before = len(server.requests)
    done = _reindex(
        stack, "--backend", "openai", "--model", NEW_MODEL, "--dimensions", str(DIMENSIONS)
    )
    return {
        "documents": documents,
        "before": before,
        "cli": done,
        "status": json.loads(done.stdout) if done.stdout else {},
        "requests": server.requests[requests_before:],
    }


def test_the_cli_follows_the_reindex_to_the_switch(switched: dict[str, Any]) -> None:
    cli, status = switched["cli"], switched["status"]
    assert cli.returncode == 0, cli.stderr
    assert (status["status"], status["progress"], status["switched"]) == ("completed", 100, True)
    chunks = sum(d["chunks_total"] for d in switched["documents"])
    assert status["embedded"] == chunks
    assert status["target"] == f"docflow_{NEW_MODEL}_{DIMENSIONS}_bm25v1"
    assert status["source"] == "docflow_all-minilm-l6-v2_384_bm25v1"
    assert status["model"] == NEW_MODEL
    # Progress lines on stderr, from pending or running to completed.
    lines = [line for line in cli.stderr.splitlines() if line.startswith("[")]
    assert lines[-1].startswith("[100%] completed: searches and new documents now use")
    # Every chunk went to the endpoint once, with the model and size asked for.
    assert sum(n for n, _, _ in switched["requests"]) == chunks
    assert {(model, size) for _, model, size in switched["requests"]} == {(NEW_MODEL, DIMENSIONS)}


def _embedded_texts(stack: Stack) -> dict[tuple[str, int], str]:
    """Each chunk's embedded text (title and headings, then its text), by document and
    index, from the chunk batches on the topic."""
    values = asyncio.run(read_topic(stack.kafka_bootstrap_servers, topics.EXTRACTED))
    return {
        (str(event.document_id), chunk.index): chunk.embedded
        for event in readable_events(values)
        if isinstance(event, TextExtracted)
        for chunk in event.chunks
    }


def test_searches_use_the_new_model_and_find_each_chunk_by_its_text(
    stack: Stack, http: httpx.Client, switched: dict[str, Any]
) -> None:
    embedded = _embedded_texts(stack)
    for hit in switched["before"]["results"][:3]:
        # The test endpoint's vectors come from a text's hash, so the query is the
        # text that was embedded: the chunk's title and headings, then its text.
        text = embedded[(hit["document_id"], hit["chunk_index"])]
        found = _search(http, stack, text)
        assert found["model"] == NEW_MODEL
        best = found["results"][0]
        assert (best["document_id"], best["chunk_index"]) == (
            hit["document_id"],
            hit["chunk_index"],
        )
        assert best["score"] == pytest.approx(1.0, abs=1e-4)
        # The new collection has keyword vectors too: hybrid search fuses both.
        hybrid = _search(http, stack, text, mode="hybrid")
        assert hybrid["mode"] == "hybrid"
        assert hybrid["note"] is None
        assert (hit["document_id"], hit["chunk_index"]) in {
            (r["document_id"], r["chunk_index"]) for r in hybrid["results"]
        }


def test_documents_uploaded_after_the_switch_go_to_the_new_collection(
    stack: Stack, http: httpx.Client, switched: dict[str, Any]
) -> None:
    [later] = _completed(http, stack, [LATER])
    values = asyncio.run(read_topic(stack.kafka_bootstrap_servers, topics.EXTRACTED))
    chunks = [
        chunk
        for event in readable_events(values)
        if isinstance(event, TextExtracted) and str(event.document_id) == later["id"]
        for chunk in event.chunks
    ]
    assert len(chunks) == later["chunks_total"] >= 1
    for chunk in chunks[:3]:
        found = _search(http, stack, chunk.embedded)
        assert found["model"] == NEW_MODEL
        best = found["results"][0]
        assert (best["document_id"], best["chunk_index"]) == (later["id"], chunk.index)


def test_a_model_the_embedder_cannot_build_fails_with_a_reason(
    stack: Stack, switched: dict[str, Any]
) -> None:
    failed = _reindex(stack, "--backend", "local", "--model", "bge-small")
    assert failed.returncode == 1
    status = json.loads(failed.stdout)
    assert status["status"] == "failed"
    assert "the local backend has one model" in status["error"]
    refused = _reindex(stack, "--backend", "cohere", "--model", "x")
    assert refused.returncode == 2
    # The CLI's error box, read as one line of words.
    said = " ".join(refused.stderr.replace("│", " ").split())
    assert "Invalid value for '--backend'" in said
    assert "'cohere' is not one of 'local', 'openai'" in said
