"""Optional reranking: search results reordered by a ``/rerank`` endpoint, here a real
HTTP server started by the test (uvicorn in a thread) that computes its own scores,
in both request shapes (TEI's and Cohere's), and what happens when it fails."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, local_client
from docflow_embedder.adapters.reranker import HttpReranker
from docflow_embedder.bootstrap import reranker
from docflow_embedder.domain import FixedIndex, VectorPoint, point_id
from docflow_embedder.entrypoints.http import search_route
from docflow_embedder.handlers import search_chunks
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.auth import INTERNAL_TOKEN_HEADER
from support.threaded import serving

TOKEN = "internal-token-for-the-tests"
KEY = "rerank-key"

TEXTS = [
    "Glaciers in the Alps have lost half their volume since 1900.",
    "Ice sheets in Greenland melt faster every summer, raising the sea level.",
    "The bakery sells bread, and its oven melts butter for croissants.",
    "Alpine glaciers melt: summer melt exceeds winter snow on glaciers below 3,500 metres.",
    "Revenue grew by four percent in the quarter.",
    "Snowfall in the Alps was below average this winter.",
]


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@dataclass
class RerankServer:
    """Scores each text by the query words it holds (a stand-in cross-encoder)."""

    api: str = "tei"
    script: list[str] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    @staticmethod
    def score(query: str, text: str) -> float:
        return len(words(query) & words(text)) + 1 / (1 + len(text))

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/rerank")
        async def rerank(request: Request) -> Response:
            body = await request.json()
            self.asked.append({"body": body, "auth": request.headers.get("authorization")})
            if self.api == "cohere" and request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"error": "bad key"}, 401)
            texts = body["texts"] if self.api == "tei" else body["documents"]
            rows = [
                {"index": i, "score": self.score(body["query"], t)} for i, t in enumerate(texts)
            ]
            misbehave = self.script.pop(0) if self.script else None
            if misbehave == "500":
                return JSONResponse({"error": "overloaded"}, 500)
            if misbehave == "short":
                rows = rows[:-1]
            if misbehave == "slow":
                await asyncio.sleep(3)
            if self.api == "tei":
                return JSONResponse(sorted(rows, key=lambda r: -r["score"]))
            results = [{"index": r["index"], "relevance_score": r["score"]} for r in rows]
            return JSONResponse({"model": body.get("model"), "results": results})

        return app


@pytest.fixture(params=["tei", "cohere"])
def rerank_server(request: pytest.FixtureRequest) -> Iterator[RerankServer]:
    server = RerankServer(api=request.param)
    with serving(server.app(), "the test rerank server") as port:
        server.url = f"http://127.0.0.1:{port}/rerank"
        yield server


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def store(tmp_path: Path, model: MiniLMEmbedder) -> Iterator[QdrantVectorStore]:
    client = local_client(tmp_path / "qdrant")
    store = QdrantVectorStore(client, "docflow_rerank_test", model.dimension)
    document_id = uuid.uuid4()
    store.upsert(
        [
            VectorPoint(
                id=point_id("acme", document_id, i, model.model),
                vector=vector,
                payload={
                    "tenant_id": "acme",
                    "document_id": str(document_id),
                    "chunk_index": i,
                    "text": text,
                },
            )
            for i, (text, vector) in enumerate(zip(TEXTS, model.embed(TEXTS), strict=True))
        ]
    )
    yield store
    client.close()


def reranker_for(server: RerankServer, timeout_s: float = 10.0) -> HttpReranker:
    return HttpReranker(
        server.url,
        api=server.api,  # type: ignore[arg-type]
        model="test-reranker",
        api_key=KEY,
        timeout_s=timeout_s,
    )


QUERY = "do glaciers in the Alps melt in summer"


async def test_results_come_in_the_rerankers_order_with_its_scores(
    rerank_server: RerankServer, store: QdrantVectorStore, model: MiniLMEmbedder
) -> None:
    plain = await search_chunks(QUERY, "acme", 3, embedder=model, vectors=store, mode="hybrid")
    found = await search_chunks(
        QUERY,
        "acme",
        3,
        embedder=model,
        vectors=store,
        mode="hybrid",
        reranker=reranker_for(rerank_server),
        candidates=5,
    )
    assert found.reranked
    assert found.note is None
    # The server was asked about the best 5 candidates and ordered them its way.
    [asked] = rerank_server.asked
    sent = asked["body"]["texts" if rerank_server.api == "tei" else "documents"]
    assert len(sent) == 5
    best = sorted(sent, key=lambda t: -RerankServer.score(QUERY, t))[:3]
    assert [hit.text for hit in found.hits] == best
    assert [hit.score for hit in found.hits] == [RerankServer.score(QUERY, t) for t in best]
    assert [hit.text for hit in found.hits] != [hit.text for hit in plain.hits]
    if rerank_server.api == "cohere":
        assert asked["body"]["model"] == "test-reranker"
        assert asked["body"]["top_n"] == 5


async def test_results_by_document_are_not_reranked_and_say_so(
    rerank_server: RerankServer, store: QdrantVectorStore, model: MiniLMEmbedder
) -> None:
    plain = await search_chunks(
        QUERY, "acme", 3, embedder=model, vectors=store, mode="hybrid", group_size=3
    )
    found = await search_chunks(
        QUERY,
        "acme",
        3,
        embedder=model,
        vectors=store,
        mode="hybrid",
        reranker=reranker_for(rerank_server),
        group_size=3,
    )
    assert rerank_server.asked == []
    assert not found.reranked
    assert found.note == "not reranked: results by document are not reranked"
    assert found.groups == plain.groups
    assert found.hits == plain.hits


@pytest.mark.parametrize("misbehaviour", ["500", "short", "slow"])
async def test_a_failing_reranker_leaves_the_order_as_searched_and_says_why(
    rerank_server: RerankServer,
    store: QdrantVectorStore,
    model: MiniLMEmbedder,
    misbehaviour: str,
) -> None:
    rerank_server.script.append(misbehaviour)
    plain = await search_chunks(QUERY, "acme", 3, embedder=model, vectors=store, mode="hybrid")
    found = await search_chunks(
        QUERY,
        "acme",
        3,
        embedder=model,
        vectors=store,
        mode="hybrid",
        reranker=reranker_for(rerank_server, timeout_s=1.0),
    )
    assert not found.reranked
    assert found.hits == plain.hits
    assert found.note is not None
    assert found.note.startswith("not reranked: ")
    assert rerank_server.url in found.note


async def test_the_route_reranks_only_when_a_reranker_is_set(
    rerank_server: RerankServer, store: QdrantVectorStore, model: MiniLMEmbedder
) -> None:
    for configured, expected in ((None, False), (reranker_for(rerank_server), True)):
        route = search_route(FixedIndex(model, store), TOKEN, reranker=configured)[1]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=route),
            base_url="http://embedder",
            headers={INTERNAL_TOKEN_HEADER: TOKEN},
        ) as http:
            answer = await http.get("/internal/search", params={"q": QUERY, "tenant": "acme"})
        assert answer.status_code == 200
        assert answer.json()["reranked"] is expected
    assert len(rerank_server.asked) == 1


def test_reranking_is_off_unless_a_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DOCFLOW_RERANK_URL", "DOCFLOW_RERANK_API"):
        monkeypatch.delenv(name, raising=False)
    assert reranker(EmbedderSettings()) is None
    monkeypatch.setenv("DOCFLOW_RERANK_URL", "http://reranker:8080/v1/rerank")
    monkeypatch.setenv("DOCFLOW_RERANK_API", "cohere")
    built = reranker(EmbedderSettings())
    assert built is not None
    assert (built.url, built.api) == ("http://reranker:8080/v1/rerank", "cohere")
