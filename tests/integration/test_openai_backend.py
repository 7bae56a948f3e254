"""The OpenAI backend: the real ``openai`` client against a local OpenAI-compatible
server (tests/support/openai_server.py) that answers, refuses, throttles, stalls and
garbles. Nothing calls the internet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import openai
import pytest
from faststream.kafka import TestKafkaBroker
from qdrant_client import QdrantClient, models

from docflow_embedder.adapters.openai_embedder import OpenAIEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.bootstrap import Ports, embedder_for, wire
from docflow_embedder.domain import FixedIndex
from docflow_embedder.settings import EmbedderSettings
from docflow_shared import topics
from docflow_shared.errors import DocumentError
from docflow_shared.events import (
    Chunk,
    DocumentFailed,
    DocumentIndexed,
    ErrorCode,
    TextExtracted,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.topics import specs
from service.conftest import Collector
from support.openai_server import KEY, EmbeddingsServer, embeddings_server, vector_of
from support.waiting import await_until

MODEL = "compatible-embedder"
TEXTS = [f"chunk number {i} of a document" for i in range(5)]


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with embeddings_server() as running:
        yield running


def embedder(
    server: EmbeddingsServer,
    *,
    key: str = KEY,
    retries: int = 2,
    timeout_s: float = 10,
    **limits: int,
) -> OpenAIEmbedder:
    client = openai.OpenAI(api_key=key, base_url=server.url, max_retries=retries, timeout=timeout_s)
    return OpenAIEmbedder(client, MODEL, dimension=server.dimension, **limits)


def test_texts_become_unit_vectors_in_order_in_one_request(server: EmbeddingsServer) -> None:
    vectors = embedder(server).embed(TEXTS)
    expected = np.array([vector_of(t, server.dimension) for t in TEXTS])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5)
    assert server.requests == [(5, MODEL, server.dimension)]


def test_requests_stay_within_the_input_and_token_limits(server: EmbeddingsServer) -> None:
    embedder(server, max_inputs=2).embed(TEXTS)
    assert [n for n, _, _ in server.requests] == [2, 2, 1]
    server.requests.clear()
    # Each text is 30 bytes: three fit in 90 tokens, a fourth would not.
    embedder(server, max_request_tokens=90).embed(TEXTS)
    assert [n for n, _, _ in server.requests] == [3, 2]


def test_a_chunk_larger_than_a_request_fails_its_document_for_good(
    server: EmbeddingsServer,
) -> None:
    with pytest.raises(DocumentError) as failed:
        embedder(server, max_request_tokens=10).embed(["far more than ten bytes of text"])
    assert failed.value.code is ErrorCode.LIMIT_EXCEEDED
    assert not failed.value.retryable
    assert "DOCFLOW_CHUNK_TOKENS" in failed.value.message
    assert server.requests == []


def test_429s_are_retried_after_what_retry_after_asks(server: EmbeddingsServer) -> None:
    server.script = ["429", "429"]
    vectors = embedder(server, retries=3).embed(TEXTS)
    assert vectors.shape == (5, server.dimension)
    assert len(server.requests) == 3
    # Retry-After: 1 was honoured (the client's own backoff would wait ~0.5-1 s).
    gaps = np.diff(server.arrivals)
    assert all(gap >= 0.95 for gap in gaps), gaps


def test_5xx_are_retried_then_fail_the_document_with_a_retryable_reason(
    server: EmbeddingsServer,
) -> None:
    server.script = ["500"] * 10
    with pytest.raises(DocumentError) as failed:
        embedder(server, retries=2).embed(TEXTS)
    assert len(server.requests) == 3
    assert failed.value.code is ErrorCode.INTERNAL
    assert failed.value.retryable
    assert "500 even after retries" in failed.value.message


def test_a_server_that_does_not_answer_in_time_is_a_timeout(server: EmbeddingsServer) -> None:
    server.script = ["slow", "slow"]
    server.slow_s = 3
    with pytest.raises(DocumentError) as failed:
        embedder(server, retries=1, timeout_s=0.5).embed(TEXTS)
    assert failed.value.code is ErrorCode.TIMEOUT
    assert failed.value.retryable
    assert len(server.arrivals) == 2


@pytest.mark.parametrize("answer", ["malformed", "short", "wrong_size"])
def test_an_answer_that_is_not_the_embeddings_asked_for_is_refused(
    server: EmbeddingsServer, answer: str
) -> None:
    server.script = [answer]
    with pytest.raises(DocumentError) as failed:
        embedder(server, retries=0).embed(TEXTS)
    assert "not the embeddings asked for" in failed.value.message
    assert failed.value.retryable


def test_a_refused_key_says_which_setting_to_fix_and_is_not_retried(
    server: EmbeddingsServer,
) -> None:
    with pytest.raises(DocumentError) as failed:
        embedder(server, key="sk-wrong", retries=5).embed(TEXTS)
    assert "DOCFLOW_OPENAI_API_KEY" in failed.value.message
    assert "401" in failed.value.message
    assert len(server.arrivals) == 1


def test_without_a_key_every_batch_fails_saying_so() -> None:
    settings = EmbedderSettings(embedding_backend="openai", openai_api_key=None)
    with pytest.raises(DocumentError, match="no OpenAI API key"):
        embedder_for(settings).embed(TEXTS)


def test_settings_choose_the_model_its_size_and_the_endpoint(server: EmbeddingsServer) -> None:
    chosen = embedder_for(
        EmbedderSettings(
            embedding_backend="openai",
            openai_api_key=KEY,
            openai_base_url=server.url,
            openai_model="text-embedding-3-small",
            openai_dimensions=server.dimension,
        )
    )
    chosen.embed(TEXTS[:1])
    # text-embedding-3 models are asked for the configured size.
    assert server.requests == [(1, "text-embedding-3-small", server.dimension)]
    assert (chosen.model, chosen.dimension) == ("text-embedding-3-small", server.dimension)
    with pytest.raises(ValueError, match="DOCFLOW_OPENAI_DIMENSIONS"):
        OpenAIEmbedder(None, "some-unknown-model")


def batches(document_id: uuid.UUID) -> list[TextExtracted]:
    common = {"document_id": document_id, "tenant_id": "t1", "correlation_id": "c"}
    chunks = [Chunk(index=i, text=t, char_start=0, char_end=len(t)) for i, t in enumerate(TEXTS)]
    return [TextExtracted(**common, batch=0, chunks=chunks, last=True, chunks_total=len(chunks))]


@pytest.mark.parametrize("key", [KEY, "sk-revoked"], ids=["accepted", "refused"])
async def test_the_embedder_service_on_the_openai_backend(
    kafka_bootstrap: str, server: EmbeddingsServer, key: str
) -> None:
    await ensure_topics(kafka_bootstrap, specs())
    model = embedder(server, key=key)
    client = QdrantClient(":memory:")
    vectors = QdrantVectorStore(client, collection_name(MODEL, server.dimension), server.dimension)
    broker = make_broker(kafka_bootstrap, service="embedder")
    wire(broker, Ports(FixedIndex(model, vectors)), EmbedderSettings())
    outcomes = Collector(broker, topics.INDEXED, topics.FAILED, group_id=f"test-{uuid.uuid4()}")
    document_id = uuid.uuid4()
    outcomes.document_ids.add(document_id)
    async with TestKafkaBroker(broker, with_real=True) as br:
        for event in batches(document_id):
            await br.publish(event, topic=event.TOPIC, key=str(document_id).encode())
        await await_until(lambda: outcomes.events, timeout_s=60, what="an outcome")
    [outcome] = outcomes.events
    # Chunk batches other tests left on the shared broker may be embedded too: count ours.
    ours = models.Filter(
        must=[
            models.FieldCondition(
                key="document_id", match=models.MatchValue(value=str(document_id))
            )
        ]
    )
    stored = client.count(vectors.collection, count_filter=ours).count
    client.close()
    if key == KEY:
        assert isinstance(outcome, DocumentIndexed)
        assert outcome.embedding_model == MODEL
        assert stored == len(TEXTS)
    else:
        assert isinstance(outcome, DocumentFailed)
        assert "DOCFLOW_OPENAI_API_KEY" in outcome.error.message
        assert outcome.error.retryable
        assert stored == 0
