"""Qdrant Query API requests for the three kinds of search: dense (cosine), keyword
(the sparse ``bm25`` vector, BM25 through Qdrant's IDF modifier) and hybrid (both as
prefetches, fused by Reciprocal Rank Fusion in the same call)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client.http import models

from docflow_embedder.keywords import KEYWORDS_VECTOR, SparseVector

# Reciprocal Rank Fusion with Qdrant's default k (2), the keyword side weighted a
# hair under the dense side's 1. With equal weights, a chunk first by meaning and
# second by keywords and another the other way round get the same fused score and
# come back in either order (two files sharing a paragraph did, run to run); this
# puts the one first by meaning first. It moves a fused score by under 0.1 %, so
# it only orders what would otherwise be a tie.
KEYWORD_WEIGHT = 0.999


def fusion(sides: int) -> models.RrfQuery:
    """RRF over ``sides`` prefetches, dense first: weighted so that ties go its way
    (weighted RRF needs a Qdrant server of 1.17 or later)."""
    return models.RrfQuery(rrf=models.Rrf(weights=[1.0, KEYWORD_WEIGHT][:sides]))


def sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def candidates(limit: int) -> int:
    """Candidates each side (dense, keywords) brings to the fusion, for ``limit`` results."""
    return max(3 * limit, 30)


def search_request(
    vector: npt.NDArray[np.float32] | None,
    keywords: SparseVector | None,
    within: models.Filter,
    limit: int,
    *,
    idf_corpus: models.Filter | None = None,
    group_size: int = 1,
) -> dict[str, Any]:
    """``query_points``'s arguments (``query_points_groups``'s too): nearest to
    ``vector``, best matching ``keywords`` (not empty), or both fused by rank, among
    the points ``within`` selects (every part of the query: the prefetches too).
    ``idf_corpus``: IDF counted over the points it selects (the tenant's), not the
    whole collection. ``group_size``: chunks wanted per result (grouped by document),
    so each side of a fusion brings enough candidates for ``limit`` groups."""
    pool = candidates(limit * group_size)
    idf = None
    if idf_corpus is not None:
        idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=idf_corpus))
    if vector is not None and keywords is not None:
        prefetch = [models.Prefetch(query=vector.tolist(), filter=within, limit=pool)]
        if keywords:
            prefetch.append(
                models.Prefetch(
                    query=sparse(keywords),
                    using=KEYWORDS_VECTOR,
                    filter=within,
                    params=idf,
                    limit=pool,
                )
            )
        # Fusion ranks only the prefetches' candidates, each already filtered: a
        # filter here too would be checked again (in local mode, on every point).
        return {
            "prefetch": prefetch,
            "query": fusion(len(prefetch)),
            "limit": limit,
        }
    if keywords is not None:
        return {
            "query": sparse(keywords),
            "using": KEYWORDS_VECTOR,
            "query_filter": within,
            "search_params": idf,
            "limit": limit,
        }
    if vector is not None:
        return {"query": vector.tolist(), "query_filter": within, "limit": limit}
    raise ValueError("search with a vector, keywords or both")
