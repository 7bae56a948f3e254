"""Keyword vectors (docflow_embedder/keywords.py): terms, their stable indexes, BM25 weights."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from docflow_embedder.keywords import (
    AVERAGE_TERMS,
    K1,
    B,
    document_vector,
    query_vector,
    term_index,
    terms,
)

# Written down once: a stored collection's keyword vectors were made with these, so a
# change here (another hash, byte order, encoding) would silently break every search.
PINNED = {
    "glacier": 2437522594,
    "4471": 108962161,
    "wojciechowska": 60680568,
    "räume": 1841606338,
}


def test_term_indexes_are_pinned() -> None:
    assert {term: term_index(term) for term in PINNED} == PINNED


def test_the_index_is_the_documented_hash() -> None:
    for term in ("glacier", "räume", "x" * 300):
        digest = hashlib.sha256(term.encode("utf-8")).digest()
        assert term_index(term) == int.from_bytes(digest[:4], "big")
        assert 0 <= term_index(term) < 2**32


def test_term_indexes_are_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from docflow_embedder.keywords import query_vector;"
        "print(list(query_vector('Glaciers melting near Räume, order XK-4471').indices))"
    )
    seen = set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seen.add(out.strip())
    assert seen == {str(list(query_vector("Glaciers melting near Räume, order XK-4471").indices))}


def test_terms_are_folded_stemmed_and_without_stopwords() -> None:
    text = "The Glaciers were MELTING; don\u2019t ask \u2014 XK-4471 in R\u00e4ume \ufb01eld"
    assert terms(text) == ["glacier", "melt", "ask", "xk", "4471", "räume", "field"]
    # Snowball's English stopwords: none of these is a term.
    assert terms("the and of to in it is was were don't would") == []


def test_document_weights_follow_bm25_saturation_and_length() -> None:
    def weight(tf: int, length: int) -> float:
        return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / AVERAGE_TERMS))

    vector = document_vector("glacier glacier ice")
    weights = dict(zip(vector.indices, vector.values, strict=True))
    assert weights[term_index("glacier")] == pytest.approx(weight(2, 3))
    assert weights[term_index("ice")] == pytest.approx(weight(1, 3))
    assert list(vector.indices) == sorted(vector.indices)
    # More occurrences weigh more, but never more than k1 + 1.
    many = document_vector(" ".join(["glacier"] * 500))
    assert weights[term_index("ice")] < weights[term_index("glacier")] < many.values[0] < K1 + 1
    # The same count in a longer chunk weighs less.
    long = document_vector("glacier " + " ".join(f"word{i}" for i in range(200)))
    assert dict(zip(long.indices, long.values, strict=True))[term_index("glacier")] < weight(1, 3)


def test_a_query_counts_each_term_once_with_weight_one() -> None:
    vector = query_vector("glacier GLACIERS ice, the ice")
    assert vector.indices == tuple(sorted({term_index("glacier"), term_index("ice")}))
    assert vector.values == (1.0, 1.0)
    assert not query_vector("the of and")
