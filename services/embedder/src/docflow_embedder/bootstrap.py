"""Wires the embedder: Kafka, the local model and Qdrant."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import httpx
import openai
from anyio import to_thread
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.engine import EngineEmbedder
from docflow_embedder.adapters.instrumented import (
    EmbeddingMetrics,
    InstrumentedEmbedder,
    chunks_embedded,
)
from docflow_embedder.adapters.openai_embedder import OpenAIEmbedder
from docflow_embedder.adapters.qdrant import QdrantIndex
from docflow_embedder.adapters.reranker import HttpReranker
from docflow_embedder.domain import Embedder, Index, Models, ModelUnavailable
from docflow_embedder.entrypoints.consumer import (
    GROUP_ID,
    register,
    register_deletions,
    register_reindex,
)
from docflow_embedder.entrypoints.http import search_route
from docflow_embedder.reindex import Reindexer
from docflow_embedder.settings import EmbedderSettings
from docflow_shared import topics
from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import (
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentRetrying,
    EmbeddingSpec,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexFailed,
    Stage,
)
from docflow_shared.failures import FailDocumentOnError
from docflow_shared.messaging import KafkaEventPublisher
from docflow_shared.metrics import RejectedEvents, RetryMetrics, StageMetrics
from docflow_shared.probes import kafka_check
from docflow_shared.retries import Parking, is_transient, register_retries
from docflow_shared.serving import consumer_app, service_broker

SERVICE = "embedder"


@dataclass(frozen=True)
class Ports:
    """The embedder's adapters: the vector index (its collections, each with its
    model) and the models it can build for a re-embedding (None: it re-embeds
    nothing)."""

    index: Index
    models: Models | None = None


def wire(
    broker: KafkaBroker,
    ports: Ports,
    settings: EmbedderSettings,
    registry: CollectorRegistry | None = None,
) -> None:
    """Attach the embedder's publishers and subscribers to ``broker`` (their metrics to
    ``registry``); with a Qdrant index and ``models``, also those of re-embedding."""
    registry = registry or CollectorRegistry()
    index = ports.index
    publish = KafkaEventPublisher(
        broker,
        source=f"/docflow/{SERVICE}",
        produces=[
            DocumentProgressed,
            DocumentIndexed,
            DocumentFailed,
            ReindexAdvanced,
            ReindexCompleted,
            ReindexFailed,
            DocumentRetrying,
        ],
    )
    cancellations = Cancellations()
    parking = Parking(
        broker,
        service=SERVICE,
        delays_s=settings.retry_delays_s,
        max_redeliveries=settings.max_redeliveries,
        metrics=RetryMetrics(registry, Stage.EMBEDDING.value),
    )
    failures = FailDocumentOnError(
        publish,
        stage=Stage.EMBEDDING,
        service=SERVICE,
        parking=parking,
        transient=transient,
        rejected=RejectedEvents(registry, SERVICE),
    )
    retry_batch = register(
        broker,
        index=index,
        publish=publish,
        cancellations=cancellations,
        # The subscriber takes polls of several documents and fails each on its own.
        failures=failures,
        stages=StageMetrics(registry, Stage.EMBEDDING.value),
        chunks_embedded=chunks_embedded(registry),
        max_batches=settings.max_batches_per_call,
    )
    router = failures.router()
    retry_removal = register_deletions(router, index=index)
    register_retries(
        router,
        parking=parking,
        group_id=GROUP_ID,
        handlers={topics.EXTRACTED: retry_batch, topics.DELETED: retry_removal},
    )
    broker.include_router(router)
    if isinstance(index, QdrantIndex) and ports.models is not None:
        register_reindex(broker, reindexer=Reindexer(index, ports.models, publish), parking=parking)
    follow_cancellations(broker, cancellations)


def transient(exc: BaseException) -> bool:
    """The embedder's dependencies unavailable: Qdrant (over HTTP), or any of the
    shared transient errors (the embeddings API's are raised as TransientError)."""
    if isinstance(exc, ResponseHandlingException | httpx.TransportError):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code is not None and (exc.status_code == 429 or exc.status_code >= 500)
    return is_transient(exc)


def configured_spec(settings: EmbedderSettings) -> EmbeddingSpec:
    """The model the settings choose (for the first collection; after a re-embedding
    the active collection says which model is in use)."""
    if settings.embedding_backend == "local":
        return EmbeddingSpec(backend="local", model=EngineEmbedder.model)
    return EmbeddingSpec(
        backend="openai", model=settings.openai_model, dimensions=settings.openai_dimensions
    )


class SettingsModels:
    """The models this embedder can build, each built once: the bundled local model,
    and any model of the configured OpenAI-compatible endpoint (its key and URL)."""

    def __init__(self, settings: EmbedderSettings, metrics: EmbeddingMetrics | None = None) -> None:
        """``metrics``: each model built is measured (``InstrumentedEmbedder``)."""
        self._settings = settings
        self._metrics = metrics
        self._built: dict[EmbeddingSpec, Embedder] = {}
        self._lock = threading.Lock()  # asked from worker threads

    def get(self, spec: EmbeddingSpec) -> Embedder:
        with self._lock:
            if spec not in self._built:
                built = self._build(spec)
                if self._metrics is not None:
                    built = InstrumentedEmbedder(built, self._metrics)
                self._built[spec] = built
            return self._built[spec]

    def _build(self, spec: EmbeddingSpec) -> Embedder:
        settings = self._settings
        if spec.backend == "local":
            local = EngineEmbedder.model
            if spec.model not in (local, local.rsplit("/", 1)[-1]) or spec.dimensions not in (
                None,
                384,
            ):
                raise ModelUnavailable(
                    f"the local backend has one model, {local} (384 dimensions), "
                    f"not {spec.model}; use the openai backend for others"
                )
            return EngineEmbedder(
                settings.local_model_dir,
                batch_size=settings.model_batch_size,
                threads=settings.embedder_threads,
                precision=settings.embedder_precision,
            )
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
        try:
            return OpenAIEmbedder(
                client,
                spec.model,
                dimension=spec.dimensions,
                max_inputs=settings.openai_max_inputs,
                max_request_tokens=settings.openai_max_request_tokens,
            )
        except ValueError as exc:
            raise ModelUnavailable(str(exc)) from exc


def embedder_for(settings: EmbedderSettings) -> Embedder:
    """The model the settings choose: the local one, or an OpenAI-compatible API."""
    return SettingsModels(settings).get(configured_spec(settings))


def qdrant_client(settings: EmbedderSettings) -> QdrantClient:
    if settings.qdrant_url is not None:
        key = settings.qdrant_api_key
        return QdrantClient(
            url=str(settings.qdrant_url), api_key=key.get_secret_value() if key else None
        )
    return open_embedded(settings.qdrant_local_path, settings.qdrant_embedded)


def reranker(settings: EmbedderSettings) -> HttpReranker | None:
    """The reranker the settings name (``DOCFLOW_RERANK_URL``), or None (off)."""
    if settings.rerank_url is None:
        return None
    key = settings.rerank_api_key
    return HttpReranker(
        str(settings.rerank_url),
        api=settings.rerank_api,
        model=settings.rerank_model,
        api_key=key.get_secret_value() if key is not None else None,
        timeout_s=settings.rerank_timeout_s,
    )


def bootstrap(settings: EmbedderSettings | None = None) -> AsgiFastStream:
    """The embedder app: consumer plus /healthz, /readyz and /metrics."""
    settings = settings or EmbedderSettings()
    registry = CollectorRegistry()
    broker = service_broker(settings, service=SERVICE, registry=registry)
    models = SettingsModels(settings, EmbeddingMetrics(registry))
    client = qdrant_client(settings)
    # Local mode has no payload indexes (it scans); a server and Edge index.
    local_mode = settings.qdrant_url is None and settings.qdrant_embedded == "local"
    index = QdrantIndex(
        client,
        models,
        index_payload=not local_mode,
        tenant_idf=settings.keyword_idf == "tenant",
    )
    active = index.start(configured_spec(settings))
    logging.getLogger(f"docflow.{SERVICE}").info(
        "embedding with %s into %s", active.embedder.model, active.vectors.collection
    )
    wire(broker, Ports(index, models), settings, registry)

    async def qdrant_ready() -> None:
        await to_thread.run_sync(lambda: index.store(index.active_name()).check())

    checks = {"kafka": kafka_check(broker), "qdrant": qdrant_ready}
    rerank = reranker(settings)
    if settings.embedding_backend == "openai":

        async def api_key_set() -> None:
            # Not a call to the API: a probe every few seconds would be billed.
            if settings.openai_api_key is None:
                raise RuntimeError("no OpenAI API key: set DOCFLOW_OPENAI_API_KEY")

        checks["embeddings_api_key"] = api_key_set

    return consumer_app(
        broker,
        service=SERVICE,
        registry=registry,
        checks=checks,
        routes=[
            search_route(
                index,
                settings.internal_token_value,
                reranker=rerank,
                rerank_candidates=settings.rerank_candidates,
            )
        ],
        # The embedded store holds a lock on its folder until closed.
        after_shutdown=[client.close, *([rerank.close] if rerank is not None else [])],
        metrics_at=settings.metrics_address,
    )
