"""The numpy runtime of all-MiniLM-L6-v2 against the original model's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from docflow_embedder.adapters.minilm import MiniLMEmbedder


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_output_matches_the_published_reference_of_the_original_model(
    model: MiniLMEmbedder,
) -> None:
    # First five dimensions of sentence-transformers/all-MiniLM-L6-v2 for
    # "hello world", as published in fastembed's test suite
    # (tests/test_text_onnx_embeddings.py, CANONICAL_VECTOR_VALUES), which
    # runs the original model exported to ONNX: an independent implementation.
    reference = np.array([-0.034478, 0.03102, 0.00673, 0.02611, -0.039362])
    [vector] = model.embed(["hello world"])
    assert np.allclose(vector[:5], reference, atol=1e-5)


def test_vectors_are_384_dimensional_float32_of_unit_length(model: MiniLMEmbedder) -> None:
    vectors = model.embed(["a", "a much longer sentence about something else entirely"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_sentences_score_closer_than_unrelated_ones(model: MiniLMEmbedder) -> None:
    anchor, paraphrase, unrelated = model.embed(
        [
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly revenue grew by eight percent.",
        ]
    )
    assert anchor @ paraphrase > 0.6
    assert anchor @ paraphrase > anchor @ unrelated + 0.4


def test_batching_and_padding_do_not_change_a_vector(model: MiniLMEmbedder) -> None:
    texts = ["short", "a considerably longer text " * 20, "medium length sentence here"]
    together = model.embed(texts)
    alone = np.stack([model.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_the_tokenizer_is_the_models_own_and_reads_256_tokens(model: MiniLMEmbedder) -> None:
    # WordPiece with the model's vocabulary: [CLS] hello world [SEP].
    assert model.count_tokens("hello world") == 4
    assert model.max_tokens == 256
    long = "word " * 1000
    prefix = "word " * 300
    assert np.allclose(model.embed([long]), model.embed([prefix]), atol=1e-5)
