"""Dense, keyword and hybrid search on real Qdrant: local mode, and a server where one is
available (support/qdrant.py), with the real all-MiniLM-L6-v2 (its numpy reference)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models as qmodels

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, local_client
from docflow_embedder.domain import FixedIndex, KeywordsMissing, VectorPoint, point_id
from docflow_embedder.entrypoints.http import search_route
from docflow_embedder.handlers import search_chunks
from docflow_embedder.keywords import KEYWORDS_VECTOR
from docflow_shared.auth import INTERNAL_TOKEN_HEADER

TOKEN = "internal-token-for-the-tests"

# One chunk names a person in passing; another is about names like hers. The
# meaning of a bare surname is closest to the chunk about surnames: dense search
# misses the chunk that holds it, keyword search finds it by the word itself.
TEXTS = [
    "Glaciers in the Alps have lost half their volume since 1900. Measurements by the "
    "survey team of Ms Wojciechowska show the loss speeding up after 1980, with summer "
    "melt now exceeding winter snowfall on most glaciers below 3,500 metres.",
    "The quarterly report shows revenue growing by four percent, driven by subscriptions "
    "in northern Europe, while hardware sales declined for the third quarter in a row.",
    "Preheat the oven to 200 degrees and bake the bread for forty minutes, until the "
    "crust is dark brown and the loaf sounds hollow when tapped underneath.",
    "The committee approved the new bicycle lanes along the river, to be built next "
    "spring, after residents asked for safer routes to the schools.",
    "Our support team answers tickets within one business day; urgent incidents such as "
    "outage INC-88213 are escalated to the engineer on call at any hour.",
    "Polish surnames often end in -ski or -ska, depending on whether the bearer is a man "
    "or a woman, a pattern that dates back to the names of estates.",
    "The museum's new wing displays ceramics from the Ming dynasty, lent by a private "
    "collection for the next two years.",
    "Vaccination rates among children rose last year after the clinics extended their "
    "opening hours into the evenings.",
]
NAMED, SURNAMES, OUTAGE = 0, 5, 4


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def vectors(model: MiniLMEmbedder) -> npt.NDArray[np.float32]:
    return model.embed(TEXTS)


@pytest.fixture(
    params=[
        pytest.param("local", id="local-mode"),
        pytest.param("server", id="server"),
    ]
)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QdrantClient]:
    if request.param == "local":
        client = local_client(tmp_path / "qdrant")
    else:
        client = QdrantClient(url=request.getfixturevalue("qdrant_url"))
    yield client
    client.close()


def store_with(
    client: QdrantClient,
    model: MiniLMEmbedder,
    vectors: npt.NDArray[np.float32],
    *,
    tenant: str = "acme",
    texts: list[str] = TEXTS,
    store: QdrantVectorStore | None = None,
    tenant_idf: bool = False,
) -> QdrantVectorStore:
    store = store or QdrantVectorStore(
        client, f"docflow_test_{uuid.uuid4().hex[:8]}", model.dimension, tenant_idf=tenant_idf
    )
    document_id = uuid.uuid4()
    store.upsert(
        [
            VectorPoint(
                id=point_id(tenant, document_id, i, model.model),
                vector=vector,
                payload={
                    "tenant_id": tenant,
                    "document_id": str(document_id),
                    "chunk_index": i,
                    "page": None,
                    "page_end": None,
                    "text": text,
                },
            )
            for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
        ]
    )
    return store


async def ranked(
    store: QdrantVectorStore, model: MiniLMEmbedder, query: str, mode: str, tenant: str = "acme"
) -> list[str]:
    found = await search_chunks(query, tenant, 5, embedder=model, vectors=store, mode=mode)  # type: ignore[arg-type]
    assert found.mode == mode
    assert found.note is None
    return [hit.text for hit in found.hits]


async def test_keyword_search_finds_a_rare_name_that_dense_search_misses(
    client: QdrantClient, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    store = store_with(client, model, vectors)
    assert store.keywords
    dense = await ranked(store, model, "Wojciechowska", "dense")
    assert dense[0] == TEXTS[SURNAMES]  # by meaning, the chunk about surnames
    assert await ranked(store, model, "Wojciechowska", "keyword") == [TEXTS[NAMED]]
    hybrid = await ranked(store, model, "Wojciechowska", "hybrid")
    assert hybrid[0] == TEXTS[NAMED]
    assert TEXTS[SURNAMES] in hybrid  # dense's candidates are fused in, not dropped
    # A code, written as the chunk writes it or not.
    for query in ("INC-88213", "what happened in incident inc 88213?"):
        assert (await ranked(store, model, query, "keyword"))[0] == TEXTS[OUTAGE]
        assert (await ranked(store, model, query, "hybrid"))[0] == TEXTS[OUTAGE]


async def test_every_mode_finds_a_paraphrase_and_stays_in_the_tenant(
    client: QdrantClient, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    store = store_with(client, model, vectors)
    other = ["Ms Wojciechowska's glaciers melted completely in the bread oven."]
    store_with(client, model, model.embed(other), tenant="globex", texts=other, store=store)
    for mode in ("dense", "hybrid"):
        assert (await ranked(store, model, "how fast is the ice melting", mode))[0] == TEXTS[0]
    for mode in ("dense", "keyword", "hybrid"):
        for text in await ranked(store, model, "Wojciechowska glaciers bread", mode):
            assert text in TEXTS, mode  # never globex's chunk
    assert await ranked(store, model, "Wojciechowska", "keyword", tenant="globex") == other
    # Stopwords only: no term to match; hybrid still answers by meaning.
    assert await ranked(store, model, "what is it", "keyword") == []
    assert len(await ranked(store, model, "what is it", "hybrid")) == 5


async def test_every_point_holds_a_keyword_vector(
    client: QdrantClient, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    store = store_with(client, model, vectors)
    records, _ = client.scroll(store.collection, limit=100, with_vectors=True)
    assert len(records) == len(TEXTS)
    for record in records:
        assert isinstance(record.vector, dict)
        keywords = record.vector[KEYWORDS_VECTOR]
        assert isinstance(keywords, qmodels.SparseVector)
        assert len(keywords.indices) > 5
    params = client.get_collection(store.collection).config.params
    assert params.sparse_vectors is not None
    assert params.sparse_vectors[KEYWORDS_VECTOR].modifier == qmodels.Modifier.IDF


async def test_a_collection_made_before_keyword_vectors_serves_dense_and_says_so(
    client: QdrantClient, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    name = f"docflow_legacy_{uuid.uuid4().hex[:8]}"
    client.create_collection(
        name,
        vectors_config=qmodels.VectorParams(size=model.dimension, distance=qmodels.Distance.COSINE),
    )
    store = store_with(client, model, vectors, store=QdrantVectorStore(client, name, 0))
    assert not store.keywords
    found = await search_chunks("Wojciechowska", "acme", 3, embedder=model, vectors=store)
    assert found.mode == "dense"  # asked: dense (the handler's default)
    hybrid = await search_chunks(
        "ice melting", "acme", 3, embedder=model, vectors=store, mode="hybrid"
    )
    assert hybrid.mode == "dense"
    assert hybrid.note is not None
    assert "reindex" in hybrid.note
    assert hybrid.hits[0].text == TEXTS[0]
    with pytest.raises(KeywordsMissing, match="reindex"):
        await search_chunks("ice", "acme", 3, embedder=model, vectors=store, mode="keyword")

    route = search_route(FixedIndex(model, store), TOKEN)[1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=route),
        base_url="http://embedder",
        headers={INTERNAL_TOKEN_HEADER: TOKEN},
    ) as http:
        answer = await http.get("/internal/search", params={"q": "ice", "tenant": "acme"})
        assert answer.status_code == 200
        assert answer.json()["mode"] == "dense"
        assert "reindex" in answer.json()["note"]
        keyword = await http.get(
            "/internal/search", params={"q": "ice", "tenant": "acme", "mode": "keyword"}
        )
        assert keyword.status_code == 409
        assert keyword.json()["code"] == "keywords-missing"


async def test_the_route_takes_a_mode_hybrid_by_default(
    tmp_path: Path, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    client = local_client(tmp_path / "qdrant")
    store = store_with(client, model, vectors)
    route = search_route(FixedIndex(model, store), TOKEN)[1]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=route),
        base_url="http://embedder",
        headers={INTERNAL_TOKEN_HEADER: TOKEN},
    ) as http:

        async def search(**params: str) -> httpx.Response:
            return await http.get(
                "/internal/search", params={"q": "Wojciechowska", "tenant": "acme", **params}
            )

        default = (await search()).json()
        assert default["mode"] == "hybrid"
        assert default["note"] is None
        assert default["hits"][0]["text"] == TEXTS[NAMED]
        dense = (await search(mode="dense")).json()
        assert dense["mode"] == "dense"
        assert dense["hits"][0]["text"] == TEXTS[SURNAMES]
        keyword = (await search(mode="keyword")).json()
        assert [h["text"] for h in keyword["hits"]] == [TEXTS[NAMED]]
        for bad in ("semantic", "HYBRID"):
            refused = await search(mode=bad)
            assert refused.status_code == 422, bad
            assert "hybrid, dense, keyword" in refused.json()["detail"]
    client.close()


async def test_tenant_idf_keeps_other_tenants_out_of_a_tenants_keyword_scores(
    tmp_path: Path, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    """With ``DOCFLOW_KEYWORD_IDF=tenant`` a term's rarity is counted over the tenant's own
    chunks: another tenant uploading the same word changes nothing (with the default,
    collection-wide counts, it does)."""
    crowd = [f"Wojciechowska note number {i}" for i in range(40)]
    crowd_vectors = np.tile(vectors[:1], (len(crowd), 1))
    scores = {}
    for tenant_idf in (False, True):
        client = local_client(tmp_path / f"qdrant-{tenant_idf}")
        store = store_with(client, model, vectors, tenant_idf=tenant_idf)

        async def score(store: QdrantVectorStore = store) -> float:
            found = await search_chunks(
                "Wojciechowska", "acme", 1, embedder=model, vectors=store, mode="keyword"
            )
            return found.hits[0].score

        before = await score()
        store_with(client, model, crowd_vectors, tenant="globex", texts=crowd, store=store)
        scores[tenant_idf] = (before, await score())
        client.close()
    alone, crowded = scores[True]
    assert crowded == pytest.approx(alone)
    alone, crowded = scores[False]
    assert crowded < alone * 0.7


async def test_the_gateway_answers_409_for_keywords_on_a_collection_made_before(
    tmp_path: Path, model: MiniLMEmbedder, vectors: npt.NDArray[np.float32]
) -> None:
    """The gateway's client of the embedder's route, on the real route (in process)."""
    from docflow_gateway.adapters.search_client import HttpSearch, KeywordsMissing

    client = local_client(tmp_path / "qdrant")
    client.create_collection(
        "docflow_legacy",
        vectors_config=qmodels.VectorParams(size=model.dimension, distance=qmodels.Distance.COSINE),
    )
    store = store_with(client, model, vectors, store=QdrantVectorStore(client, "docflow_legacy", 0))
    route = search_route(FixedIndex(model, store), TOKEN)[1]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=route)) as http:
        search = HttpSearch(http, "http://embedder", TOKEN)
        answer = await search("ice melting", "acme", 2)
        assert answer["mode"] == "dense"
        assert "reindex" in answer["note"]
        assert (await search("ice melting", "acme", 2, mode="dense"))["note"] is None
        with pytest.raises(KeywordsMissing, match="reindex"):
            await search("ice", "acme", 2, mode="keyword")
    client.close()
