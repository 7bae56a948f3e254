"""Keyword vectors: the sparse, BM25-style side of hybrid search.

A chunk's text becomes a sparse vector of its terms, stored beside its dense
vector in the collection's ``bm25`` sparse vector, for which Qdrant applies
its IDF modifier at query time. Together they give Okapi BM25:

- **Terms**: the text in Unicode NFKC, case-folded, cut into words (runs of
  letters, digits and underscores, with inner apostrophes: ``don't``); words
  of the Snowball English stopword list (package ``stopwords``) are dropped,
  the others stemmed by the Snowball English stemmer (package
  ``snowballstemmer``). Codes and names survive as words: ``XK-4471`` is the
  terms ``xk`` and ``4471``.
- **Index of a term**: the first four bytes of the SHA-256 digest of its UTF-8
  bytes, read as a big-endian unsigned 32-bit integer (``term_index``). It is
  the same in every process and Python version (``hash()`` is not); tests pin
  a few values. Terms whose indexes collide add up.
- **Document side** (each chunk): BM25's term-frequency saturation and length
  normalisation, ``tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))`` with
  ``k1 = 1.2``, ``b = 0.75`` and ``len`` the chunk's term count. ``avglen`` is
  a fixed estimate, not the collection's running average (which changes with
  every upload and would need every vector rewritten): 85 terms, between the
  means measured on the test corpus after stopwords (GeoTopo's 362 chunks of
  about 200 model tokens: 77; its Markdown files in 900-character pieces: 107).
- **Query side**: each distinct term of the query with weight 1; Qdrant
  multiplies it by the term's IDF, ``ln(1 + (N − df + 0.5)/(df + 0.5))``.

Changing any of this changes the vectors: it gets a new ``KEYWORDS_VERSION``,
which is part of the collection's name, so re-embedding (``reindex.py``)
builds a new collection and switches to it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]
import stopwords  # type: ignore[import-untyped]

# The collection's sparse vector of keywords, and the version of what fills it.
KEYWORDS_VECTOR = "bm25"
KEYWORDS_VERSION = "bm25v1"
K1 = 1.2
B = 0.75
AVERAGE_TERMS = 85.0

_WORD = re.compile(r"\w+(?:'\w+)*")
_STOPWORDS = frozenset(stopwords.get_stopwords("english"))
_STEMMER = snowballstemmer.stemmer("english")


@dataclass(frozen=True)
class SparseVector:
    """Term indexes (ascending, distinct) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


def term_index(term: str) -> int:
    """The sparse index of ``term``: SHA-256's first four bytes, big-endian."""
    return int.from_bytes(hashlib.sha256(term.encode("utf-8")).digest()[:4], "big")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    return stem


def terms(text: str) -> list[str]:
    """The text's terms, in order (stopwords dropped, the others stemmed)."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    return [_stem(w) for w in _WORD.findall(folded) if w not in _STOPWORDS]


def _vector(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(tuple(i for i, _ in ordered), tuple(w for _, w in ordered))


def document_vector(text: str) -> SparseVector:
    """A chunk's keyword vector: BM25 term weights (without IDF, which Qdrant adds)."""
    found = terms(text)
    norm = K1 * (1 - B + B * len(found) / AVERAGE_TERMS)
    weights: dict[int, float] = {}
    for term, tf in Counter(found).items():
        index = term_index(term)
        # Two terms with one index (a hash collision) count as one term.
        weights[index] = weights.get(index, 0.0) + tf
    return _vector({i: tf * (K1 + 1) / (tf + norm) for i, tf in weights.items()})


def query_vector(text: str) -> SparseVector:
    """A query's keyword vector: each distinct term once, with weight 1."""
    return _vector({term_index(term): 1.0 for term in terms(text)})
