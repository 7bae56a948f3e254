"""The client's metadata and search filters, through the real gateway app in process:
what it sends is what the gateway reads, and the embedder is asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from docflow_client.errors import Invalid
from docflow_client.requests import filter_params, meta_filters
from docflow_gateway.adapters.search_client import SearchOptions
from docflow_shared.events import DocumentUploaded
from support.gateway import PDF, Recorder, Searches

from .test_client import gateway

pytestmark = pytest.mark.unit


def _hit(document_id: str, text: str, score: float) -> dict[str, object]:
    return {
        "document_id": document_id,
        "chunk_index": 0,
        "page": None,
        "page_end": None,
        "score": score,
        "text": text,
    }


async def test_upload_sends_metadata_for_every_file(tmp_path: Path) -> None:
    publish = Recorder()
    async with gateway(tmp_path, publish) as client:
        await client.upload(("a.pdf", PDF), ("b.txt", b"text\n"), metadata={"team": "red", "n": 2})
        with pytest.raises(Invalid) as refused:
            await client.upload(("c.txt", b"more\n"), metadata={"team": {"nested": 1}})
    assert [e.metadata for e in publish.events if isinstance(e, DocumentUploaded)] == [
        {"team": "red", "n": 2},
        {"team": "red", "n": 2},
    ]
    assert refused.value.code == "invalid-metadata"
    assert "nested too deep" in refused.value.detail


async def test_search_filters_reach_the_embedder_and_groups_come_back(tmp_path: Path) -> None:
    searches = Searches()
    async with gateway(tmp_path, Recorder(), searches) as client:
        first, second = await client.upload(("a.pdf", PDF), ("b.txt", b"other text\n"))
        since = datetime(2026, 1, 1, tzinfo=UTC)
        await client.search(
            "q",
            meta={"team": ["red", "blue"], "year": 2024},
            filename="a.pdf",
            document_id=[first.id],
            created_from=since,
        )
        searches.groups = [
            {"document_id": str(second.id), "hits": [_hit(str(second.id), "b1", 0.9)]},
            {
                "document_id": str(first.id),
                "hits": [_hit(str(first.id), "a1", 0.8), _hit(str(first.id), "a2", 0.7)],
            },
            # Vectors of a document the gateway does not know (deleted): left out.
            {"document_id": str(uuid4()), "hits": [_hit(str(uuid4()), "x", 0.6)]},
        ]
        grouped = await client.search("q", group="document", group_size=2, limit=5)
        with pytest.raises(Invalid) as refused:
            await client.search("q", meta=["no-equals-sign"])
    assert searches.options[0] == SearchOptions(
        meta=("team=red", "team=blue", "year=2024"),
        filenames=("a.pdf",),
        document_ids=(first.id,),
        created_from=since,
    )
    assert searches.options[1].group == "document"
    assert searches.options[1].group_size == 2
    assert grouped.documents is not None
    assert [(d.filename, d.score, [c.text for c in d.chunks]) for d in grouped.documents] == [
        ("b.txt", 0.9, ["b1"]),
        ("a.pdf", 0.8, ["a1", "a2"]),
    ]
    assert [r.text for r in grouped.results] == ["b1", "a1", "a2"]
    assert refused.value.status == 422
    assert "query.meta" in refused.value.detail


async def test_a_plain_search_asks_as_before(tmp_path: Path) -> None:
    searches = Searches()
    async with gateway(tmp_path, Recorder(), searches) as client:
        found = await client.search("q")
    assert found.documents is None
    assert searches.options == []


def test_filter_params_repeat_what_has_several_values() -> None:
    doc = uuid4()
    assert meta_filters({"a": [1, True], "b": "x y"}) == ["a=1", "a=true", "b=x y"]
    assert meta_filters(["k=v"]) == ["k=v"]
    assert filter_params({"meta": {"a": 1}, "document_id": [doc], "filename": "f", "x": None}) == [
        ("meta", "a=1"),
        ("document_id", str(doc)),
        ("filename", "f"),
    ]
