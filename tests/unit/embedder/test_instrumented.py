"""The model port's metrics: each call's size and time, errors counted, by model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import CollectorRegistry

from docflow_embedder.adapters.instrumented import EmbeddingMetrics, InstrumentedEmbedder

pytestmark = pytest.mark.unit


class Model:
    model = "m-1"
    dimension = 3

    def __init__(self) -> None:
        self.down = False

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self.down:
            raise ConnectionError("endpoint down")
        return np.ones((len(texts), self.dimension), dtype=np.float32)


def test_each_call_is_measured_and_errors_counted() -> None:
    registry = CollectorRegistry()
    inner = Model()
    embedder = InstrumentedEmbedder(inner, EmbeddingMetrics(registry))
    assert (embedder.model, embedder.dimension) == ("m-1", 3)
    assert embedder.embed(["a", "b", "c"]).shape == (3, 3)
    assert embedder.embed(["d"]).shape == (1, 3)
    inner.down = True
    with pytest.raises(ConnectionError):
        embedder.embed(["e", "f"])

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name, {"model": "m-1"})

    assert sample("docflow_embedding_batch_texts_count") == 3
    assert sample("docflow_embedding_batch_texts_sum") == 6
    assert sample("docflow_embedding_duration_seconds_count") == 3
    assert sample("docflow_embedding_errors_total") == 1
