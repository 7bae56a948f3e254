"""The model port with metrics: every call's batch size and latency, by model.

Wraps whichever ``Embedder`` the settings build (the local model, an
OpenAI-compatible API), so chunk batches, re-embedding pages and search
queries are all counted as the model calls they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram

from docflow_embedder.domain import Embedder

# Texts per call: one search query up to a poll of 16 batches of 32 chunks.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# A warm local model on a few short texts up to a slow API call.
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class EmbeddingMetrics:
    """The embedder's model calls."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch = Histogram(
            "docflow_embedding_batch_texts",
            "Texts sent to the model in one call",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "docflow_embedding_duration_seconds",
            "Time of one call to the model (errors included)",
            ["model"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.errors = Counter(
            "docflow_embedding_errors",
            "Calls to the model that raised",
            ["model"],
            registry=registry,
        )


def chunks_embedded(registry: CollectorRegistry) -> Counter:
    """The chunks the embedder stored (counted by its consumer)."""
    return Counter(
        "docflow_chunks_embedded",
        "Chunks of documents embedded and stored in the active collection",
        registry=registry,
    )


class InstrumentedEmbedder:
    """``inner`` with each call measured."""

    def __init__(self, inner: Embedder, metrics: EmbeddingMetrics) -> None:
        self.inner = inner
        self.model = inner.model
        self.dimension = inner.dimension
        self._batch = metrics.batch.labels(inner.model)
        self._latency = metrics.latency.labels(inner.model)
        self._errors = metrics.errors.labels(inner.model)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self._batch.observe(len(texts))
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        except Exception:
            self._errors.inc()
            raise
        finally:
            self._latency.observe(time.perf_counter() - started)
