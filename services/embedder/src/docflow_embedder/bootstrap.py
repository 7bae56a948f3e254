"""Wires the embedder: Kafka, the local model and Qdrant."""

from __future__ import annotations

import logging

import openai
from anyio import to_thread
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from qdrant_client import QdrantClient

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.openai_embedder import OpenAIEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.domain import Embedder, VectorStore
from docflow_embedder.entrypoints.consumer import (
    MAX_BATCHES_PER_CALL,
    register,
    register_deletions,
)
from docflow_embedder.entrypoints.http import search_route
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import DocumentFailed, DocumentIndexed, DocumentProgressed, Stage
from docflow_shared.messaging import FailDocumentOnError, KafkaEventPublisher, make_broker
from docflow_shared.probes import asgi_probe_routes, kafka_check

SERVICE = "embedder"


def wire(
    broker: KafkaBroker,
    embedder: Embedder,
    vectors: VectorStore,
    *,
    max_batches: int = MAX_BATCHES_PER_CALL,
) -> None:
    """Attach the embedder's publisher and subscribers to ``broker``."""
    publish = KafkaEventPublisher(
        broker,
        source=f"/docflow/{SERVICE}",
        produces=[DocumentProgressed, DocumentIndexed, DocumentFailed],
    )
    cancellations = Cancellations()
    register(
        broker,
        embedder=embedder,
        vectors=vectors,
        publish=publish,
        cancellations=cancellations,
        # The subscriber takes polls of several documents and fails each on its own.
        failures=FailDocumentOnError(publish, stage=Stage.EMBEDDING, service=SERVICE),
        max_batches=max_batches,
    )
    register_deletions(broker, vectors=vectors)
    follow_cancellations(broker, cancellations)


def embedder_for(settings: EmbedderSettings) -> Embedder:
    """The model the settings choose: the local one, or an OpenAI-compatible API."""
    if settings.embedding_backend == "local":
        return MiniLMEmbedder(batch_size=settings.model_batch_size)
    key = settings.openai_api_key
    client = (
        openai.OpenAI(
            api_key=key.get_secret_value(),
            base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
            max_retries=settings.openai_max_retries,
            timeout=settings.openai_timeout_s,
        )
        if key is not None
        else None
    )
    return OpenAIEmbedder(
        client,
        settings.openai_model,
        dimension=settings.openai_dimensions,
        max_inputs=settings.openai_max_inputs,
        max_request_tokens=settings.openai_max_request_tokens,
    )


def qdrant_client(settings: EmbedderSettings) -> QdrantClient:
    if settings.qdrant_url is not None:
        return QdrantClient(url=str(settings.qdrant_url))
    settings.qdrant_local_path.mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(settings.qdrant_local_path))


def bootstrap(settings: EmbedderSettings | None = None) -> AsgiFastStream:
    """The embedder app: consumer plus /healthz, /readyz and /metrics."""
    settings = settings or EmbedderSettings()
    registry = CollectorRegistry()
    broker = make_broker(settings.kafka_bootstrap_servers, service=SERVICE, registry=registry)
    embedder = embedder_for(settings)
    client = qdrant_client(settings)
    vectors = QdrantVectorStore(
        client,
        collection_name(embedder.model, embedder.dimension),
        embedder.dimension,
        index_payload=settings.qdrant_url is not None,
    )
    wire(broker, embedder, vectors, max_batches=settings.max_batches_per_call)

    async def qdrant_ready() -> None:
        await to_thread.run_sync(vectors.check)

    checks = {"kafka": kafka_check(broker), "qdrant": qdrant_ready}
    if settings.embedding_backend == "openai":

        async def api_key_set() -> None:
            # Not a call to the API: a probe every few seconds would be billed.
            if settings.openai_api_key is None:
                raise RuntimeError("no OpenAI API key: set DOCFLOW_OPENAI_API_KEY")

        checks["embeddings_api_key"] = api_key_set

    return AsgiFastStream(
        broker,
        logger=logging.getLogger(f"docflow.{SERVICE}"),
        asgi_routes=[
            *asgi_probe_routes(checks, registry),
            search_route(embedder, vectors),
        ],
        # Local mode holds a lock on its folder until closed.
        after_shutdown=[client.close],
    )
