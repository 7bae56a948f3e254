"""qdrant-client's request models translated to Qdrant Edge's, and Edge's answers back.

``EdgeClient`` (adapters/edge.py) takes the same calls as ``QdrantClient``, so
the embedder's Qdrant adapter, re-embedding and rekey run unchanged on it. The
calls name what they want with qdrant-client's models (filters, prefetches,
fusion, sparse vectors); this module maps each to Edge's equivalent. Whatever
Edge has no equivalent for raises ``Unsupported`` naming it, never a silent
approximation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast
from uuid import UUID

import numpy as np
import qdrant_edge as edge
from qdrant_client.http import models


class Unsupported(NotImplementedError):
    """A request Qdrant Edge cannot answer; a Qdrant server can (DOCFLOW_QDRANT_URL)."""

    def __init__(self, what: object) -> None:
        super().__init__(
            f"the embedded vector store (Qdrant Edge) does not support {what}; "
            "use a Qdrant server (DOCFLOW_QDRANT_URL)"
        )


DISTANCES = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}

SCHEMAS = {
    models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
    models.PayloadSchemaType.FLOAT: edge.PayloadSchemaType.Float,
    models.PayloadSchemaType.GEO: edge.PayloadSchemaType.Geo,
    models.PayloadSchemaType.TEXT: edge.PayloadSchemaType.Text,
    models.PayloadSchemaType.BOOL: edge.PayloadSchemaType.Bool,
    models.PayloadSchemaType.DATETIME: edge.PayloadSchemaType.Datetime,
    models.PayloadSchemaType.UUID: edge.PayloadSchemaType.Uuid,
}

# Index parameters Edge takes, by qdrant-client's model: the fields both have.
_INDEX_PARAMS: dict[type, tuple[Any, tuple[str, ...]]] = {
    models.KeywordIndexParams: (edge.KeywordIndexParams, ("is_tenant", "on_disk")),
    models.IntegerIndexParams: (
        edge.IntegerIndexParams,
        ("lookup", "range", "is_principal", "on_disk"),
    ),
    models.FloatIndexParams: (edge.FloatIndexParams, ("is_principal", "on_disk")),
    models.DatetimeIndexParams: (edge.DatetimeIndexParams, ("is_principal", "on_disk")),
    models.UuidIndexParams: (edge.UuidIndexParams, ("is_tenant", "on_disk")),
    models.BoolIndexParams: (edge.BoolIndexParams, ("on_disk",)),
}

# Qdrant's own default k for Reciprocal Rank Fusion (a server's FusionQuery).
RRF_K = 2


def vector_params(params: models.VectorParams) -> edge.EdgeVectorParams:
    if params.multivector_config is not None:
        raise Unsupported("multivectors")
    return edge.EdgeVectorParams(
        size=params.size, distance=DISTANCES[params.distance], on_disk=params.on_disk
    )


def sparse_params(params: models.SparseVectorParams) -> edge.EdgeSparseVectorParams:
    idf = params.modifier == models.Modifier.IDF
    index = params.index
    return edge.EdgeSparseVectorParams(
        full_scan_threshold=index.full_scan_threshold if index else None,
        on_disk=index.on_disk if index else None,
        modifier=edge.Modifier.Idf if idf else None,
    )


def payload_schema(schema: Any) -> Any:
    """A payload index's type (``PayloadSchemaType`` or a ``…IndexParams``)."""
    if isinstance(schema, models.PayloadSchemaType):
        return SCHEMAS[schema]
    if isinstance(schema, str):
        return SCHEMAS[models.PayloadSchemaType(schema)]
    if type(schema) not in _INDEX_PARAMS:
        raise Unsupported(f"payload indexes with {type(schema).__name__}")
    made, fields = _INDEX_PARAMS[type(schema)]
    return made(**{f: getattr(schema, f) for f in fields if getattr(schema, f) is not None})


def point_id(value: Any) -> int | str:
    """An id as qdrant-client gives it back (UUIDs as strings)."""
    return str(value) if isinstance(value, UUID) else value


def _edge_id(value: Any) -> Any:
    return UUID(value) if isinstance(value, str) else value


def ids(values: Sequence[Any]) -> list[Any]:
    return [_edge_id(v) for v in values]


def _dense(values: Any) -> list[float]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def named_vector(value: Any) -> Any:
    """One vector of a point or a query: dense, or sparse (qdrant-client's SparseVector)."""
    if isinstance(value, models.SparseVector):
        return edge.SparseVector(list(value.indices), list(value.values))
    if isinstance(value, models.Document | models.Image | models.InferenceObject):
        raise Unsupported("inference (Document/Image) objects: embed first")
    return _dense(value)


def point_vector(vector: Any) -> Any:
    if isinstance(vector, Mapping):
        return {name: named_vector(v) for name, v in vector.items()}
    return {"": named_vector(vector)}


def from_vector(vector: Any) -> Any:
    """Edge's vector(s) of a point as qdrant-client returns them."""
    if vector is None:
        return None
    if isinstance(vector, edge.SparseVector):
        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
    if isinstance(vector, Mapping):
        named = {name: from_vector(v) for name, v in vector.items()}
        return named[""] if set(named) == {""} else named
    return list(vector)


def record(found: Any) -> models.Record:
    return models.Record(
        id=point_id(found.id), payload=found.payload, vector=from_vector(found.vector)
    )


def scored(found: Any) -> models.ScoredPoint:
    return models.ScoredPoint(
        id=point_id(found.id),
        version=found.version,
        score=found.score,
        payload=found.payload,
        vector=from_vector(found.vector),
    )


def with_payload(value: Any) -> Any:
    if isinstance(value, models.PayloadSelectorInclude):
        return edge.PayloadSelector.Include(list(value.include))
    if isinstance(value, models.PayloadSelectorExclude):
        return edge.PayloadSelector.Exclude(list(value.exclude))
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def with_vectors(value: Any) -> Any:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


# Filters.


def _when(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _match(match: Any) -> Any:
    if isinstance(match, models.MatchValue):
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return edge.MatchAny(cast(list[str], list(match.any)))
    if isinstance(match, models.MatchExcept):
        return edge.MatchExcept(cast(list[str], list(match.except_)))
    if isinstance(match, models.MatchText):
        return edge.MatchText(match.text)
    if isinstance(match, models.MatchTextAny):
        return edge.MatchTextAny(match.text_any)
    if isinstance(match, models.MatchPhrase):
        return edge.MatchPhrase(match.phrase)
    raise Unsupported(f"the match {type(match).__name__}")


def _range(given: Any) -> Any:
    if isinstance(given, models.DatetimeRange):
        return edge.RangeDateTime(
            gte=_when(given.gte), gt=_when(given.gt), lte=_when(given.lte), lt=_when(given.lt)
        )
    return edge.RangeFloat(gte=given.gte, gt=given.gt, lte=given.lte, lt=given.lt)


def _field(condition: models.FieldCondition) -> Any:
    if condition.geo_bounding_box or condition.geo_radius or condition.geo_polygon:
        raise Unsupported("geo conditions")
    count = condition.values_count
    return edge.FieldCondition(
        key=condition.key,
        match=_match(condition.match) if condition.match is not None else None,
        range=_range(condition.range) if condition.range is not None else None,
        values_count=(
            edge.ValuesCount(lt=count.lt, gt=count.gt, lte=count.lte, gte=count.gte)
            if count is not None
            else None
        ),
        is_empty=condition.is_empty,
        is_null=condition.is_null,
    )


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return query_filter(condition)
    if isinstance(condition, models.FieldCondition):
        return _field(condition)
    if isinstance(condition, models.IsEmptyCondition):
        return edge.IsEmptyCondition(condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return edge.IsNullCondition(condition.is_null.key)
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition(set(ids(list(condition.has_id))))
    if isinstance(condition, models.HasVectorCondition):
        return edge.HasVectorCondition(condition.has_vector)
    if isinstance(condition, models.NestedCondition):
        return edge.NestedCondition(condition.nested.key, required_filter(condition.nested.filter))
    raise Unsupported(f"the condition {type(condition).__name__}")


def _conditions(given: Any) -> list[Any] | None:
    if given is None:
        return None
    listed = given if isinstance(given, list) else [given]
    return [_condition(c) for c in listed]


def query_filter(given: models.Filter | None) -> edge.Filter | None:
    return None if given is None else required_filter(given)


def required_filter(given: models.Filter) -> edge.Filter:
    least = given.min_should
    return edge.Filter(
        must=_conditions(given.must),
        should=_conditions(given.should),
        must_not=_conditions(given.must_not),
        min_should=(
            edge.MinShould(_conditions(least.conditions) or [], least.min_count)
            if least is not None
            else None
        ),
    )


# Queries.


def search_params(params: models.SearchParams | None) -> edge.SearchParams | None:
    if params is None:
        return None
    return edge.SearchParams(
        hnsw_ef=params.hnsw_ef,
        exact=bool(params.exact),
        indexed_only=bool(params.indexed_only),
    )


def query(given: Any, using: str | None) -> Any:
    """The scoring part of a query: nearest to a vector, or a fusion of prefetches."""
    if given is None:
        return None
    if isinstance(given, models.NearestQuery):
        if given.mmr is not None:
            raise Unsupported("MMR queries")
        given = given.nearest
    if isinstance(given, models.FusionQuery):
        if given.fusion == models.Fusion.RRF:
            return edge.Fusion.Rrf(k=RRF_K)
        return edge.Fusion.Dbsf()
    if isinstance(given, models.RrfQuery):
        k = given.rrf.k if given.rrf.k is not None else RRF_K
        return edge.Fusion.Rrf(k=k, weights=given.rrf.weights)
    if isinstance(given, models.SparseVector | np.ndarray | list):
        return edge.Query.Nearest(named_vector(given), using=using)
    raise Unsupported(f"queries of type {type(given).__name__}")


def prefetches(given: Any) -> list[edge.Prefetch] | None:
    if given is None:
        return None
    listed = given if isinstance(given, list) else [given]
    return [
        edge.Prefetch(
            limit=p.limit if p.limit is not None else 10,
            query=query(p.query, p.using),
            prefetches=prefetches(p.prefetch),
            params=search_params(p.params),
            filter=query_filter(p.filter),
            score_threshold=p.score_threshold,
        )
        for p in listed
    ]
