"""Metadata and filters through the running system (the services as processes on a
real Kafka broker, the local model, Qdrant's local mode): metadata sent with an
upload comes back from the status API, filters the document list and the search,
never reaches across tenants, and the search can answer by document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from docflow_client import Docflow
from docflow_local.stack import Stack
from docflow_shared.auth import hash_key
from support.corpus import REPO_ROOT
from support.stacks import running_stack

RIVERS = (
    "# Rivers\n\nThe river carries stones and sand down to the sea. Floods move the "
    "river bed, and the delta grows every spring where the river meets the sea.\n"
)
BAKING = "# Baking\n\nKnead the dough, let it rise overnight, then bake the bread hot.\n"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("metadata") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "metadata",
        only=["gateway", "status", "extractor", "embedder"],
        extra_env={
            "DOCFLOW_AUTH_ENABLED": "true",
            "DOCFLOW_API_KEYS": json.dumps(
                {"acme": [hash_key("acme-key")], "globex": [hash_key("globex-key")]}
            ),
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def docs(stack: Stack) -> dict[str, UUID]:
    """acme: two river texts (red 2024, blue 2025) and a baking one without metadata;
    globex: the same river text with acme's red metadata."""
    ids: dict[str, UUID] = {}
    for tenant, name, text, meta in (
        ("acme", "red.md", RIVERS, {"team": "red", "year": 2024, "tags": ["geo", "water"]}),
        ("acme", "blue.md", RIVERS + "\nA second copy.\n", {"team": "blue", "year": 2025}),
        ("acme", "bread.md", BAKING, None),
        ("globex", "red.md", RIVERS + "\nTheirs.\n", {"team": "red", "year": 2024}),
    ):
        with _client(stack, tenant) as client:
            (accepted,) = client.upload((name, text.encode()), metadata=meta)
            ids[f"{tenant}:{name}"] = accepted.id
    for key, document_id in ids.items():
        with _client(stack, key.split(":")[0]) as client:
            assert client.wait(document_id, timeout=240).status == "completed", key
    return ids


def _client(stack: Stack, tenant: str) -> Docflow:
    return Docflow(stack.url("gateway"), stack.url("status"), api_key=f"{tenant}-key")


def _found(stack: Stack, tenant: str, **filters: object) -> set[UUID]:
    with _client(stack, tenant) as client:
        return {r.document_id for r in client.search("river floods", limit=20, **filters).results}


def test_the_status_and_the_list_show_and_filter_by_metadata(
    stack: Stack, docs: dict[str, UUID]
) -> None:
    red, blue, bread = docs["acme:red.md"], docs["acme:blue.md"], docs["acme:bread.md"]
    with _client(stack, "acme") as client:
        assert client.status(red).metadata == {
            "team": "red",
            "year": 2024,
            "tags": ["geo", "water"],
        }
        assert client.status(bread).metadata is None
        listed = client.documents(meta={"team": "red"}).documents
        assert [d.id for d in listed] == [red]
        assert {d.id for d in client.documents(meta=["year=2025"]).documents} == {blue}
        assert {d.id for d in client.documents(filename="bread.md").documents} == {bread}
        theirs = client.documents(document_id=[docs["globex:red.md"]]).documents
        assert theirs == []


def test_search_filters_by_metadata_name_id_and_time(stack: Stack, docs: dict[str, UUID]) -> None:
    red, blue, bread = docs["acme:red.md"], docs["acme:blue.md"], docs["acme:bread.md"]
    assert _found(stack, "acme") == {red, blue, bread}
    assert _found(stack, "acme", meta={"team": "red"}) == {red}
    assert _found(stack, "acme", meta={"team": ["red", "blue"]}) == {red, blue}
    assert _found(stack, "acme", meta={"team": "red", "year": 2025}) == set()
    assert _found(stack, "acme", meta=["tags=water"]) == {red}
    assert _found(stack, "acme", filename="bread.md") == {bread}
    assert _found(stack, "acme", document_id=[blue, bread]) == {blue, bread}
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert _found(stack, "acme", created_from=later) == set()
    assert _found(stack, "acme", created_before=later) == {red, blue, bread}


def test_no_filter_reaches_another_tenants_documents(stack: Stack, docs: dict[str, UUID]) -> None:
    theirs = docs["globex:red.md"]
    assert _found(stack, "globex") == {theirs}
    for filters in (
        {"document_id": [theirs]},
        {"meta": {"team": "red", "year": 2024}, "filename": "red.md"},
        {"meta": ["team=red&tenant=globex"]},
    ):
        assert theirs not in _found(stack, "acme", **filters), filters


def test_search_by_document_answers_each_once_with_its_best_chunks(
    stack: Stack, docs: dict[str, UUID]
) -> None:
    with _client(stack, "acme") as client:
        grouped = client.search(
            "river floods", limit=2, mode="hybrid", group="document", group_size=2
        )
    assert grouped.mode == "hybrid"
    assert grouped.documents is not None
    ids = [d.document_id for d in grouped.documents]
    assert len(ids) == 2
    assert len(set(ids)) == 2
    assert set(ids) == {docs["acme:red.md"], docs["acme:blue.md"]}
    for document in grouped.documents:
        assert 1 <= len(document.chunks) <= 2
        assert document.score == document.chunks[0].score
    assert [r.document_id for r in grouped.results] == [
        d.document_id for d in grouped.documents for _ in d.chunks
    ]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_filters_and_documents_hold_in_keyword_and_hybrid_search(
    stack: Stack, docs: dict[str, UUID], mode: str
) -> None:
    red, blue, bread = docs["acme:red.md"], docs["acme:blue.md"], docs["acme:bread.md"]
    theirs = docs["globex:red.md"]
    with _client(stack, "acme") as client:
        everything = client.search("river floods", limit=20, mode=mode)  # type: ignore[arg-type]
        filtered = client.search(
            "river floods",
            limit=20,
            mode=mode,  # type: ignore[arg-type]
            meta={"team": "red"},
        )
        across = client.search(
            "river floods",
            limit=20,
            mode=mode,  # type: ignore[arg-type]
            document_id=[theirs],
            meta={"team": "red"},
        )
        grouped = client.search(
            "river floods",
            limit=5,
            mode=mode,  # type: ignore[arg-type]
            group="document",
            group_size=2,
            meta={"team": ["red", "blue"]},
        )
    assert (everything.mode, filtered.mode, grouped.mode) == (mode, mode, mode)
    # Keyword search finds only the texts with the words; hybrid adds the rest by meaning.
    expected = {red, blue} if mode == "keyword" else {red, blue, bread}
    assert {r.document_id for r in everything.results} == expected
    assert {r.document_id for r in filtered.results} == {red}
    assert across.results == []
    assert grouped.documents is not None
    assert sorted(d.document_id for d in grouped.documents) == sorted({red, blue})
    assert [r.document_id for r in grouped.results] == [
        d.document_id for d in grouped.documents for _ in d.chunks
    ]


def test_the_command_line_sends_metadata_and_filters(
    stack: Stack, docs: dict[str, UUID], tmp_path: Path
) -> None:
    note = tmp_path / "green.md"
    note.write_text(RIVERS + "\nGreen team's notes.\n")
    env = {
        **os.environ,
        "DOCFLOW_GATEWAY_URL": stack.url("gateway"),
        "DOCFLOW_STATUS_URL": stack.url("status"),
        "DOCFLOW_API_KEY": "acme-key",
    }
    docflow = str(Path(sys.executable).parent / "docflow")

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [docflow, *arguments], env=env, capture_output=True, text=True, timeout=240
        )

    uploaded = run("upload", str(note), "--meta", "team=green", "--meta", "year=2026", "--wait")
    assert uploaded.returncode == 0, uploaded.stderr
    found = run("search", "river floods", "--filter", "team=green", "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert results
    assert {r["filename"] for r in results} == {"green.md"}
    listed = run("list", "--filter", "year=2026", "--json")
    assert [d["metadata"] for d in json.loads(listed.stdout)["documents"]] == [
        {"team": "green", "year": 2026}
    ]
