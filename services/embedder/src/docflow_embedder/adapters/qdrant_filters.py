"""Qdrant filters of the search: the tenant's points, narrowed by what the caller asked.

Kept apart from the store (qdrant.py) so that the one rule that matters is in
one place: every condition goes into ``must`` beside the tenant's, so a filter
can only narrow a search, never reach another tenant's points.
"""

from __future__ import annotations

from qdrant_client.http import models

from docflow_embedder.domain import SearchFilters


def equals(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


# Payload fields with an index on a Qdrant server: every search filters by tenant and
# every deletion by document; the search filters by the others. One keyword index
# on ``metadata_terms`` (``key=value`` strings) serves a filter on any metadata
# key, so none is made per key a client invents (events/metadata.py).
PAYLOAD_INDEXES = {
    "tenant_id": models.PayloadSchemaType.KEYWORD,
    "document_id": models.PayloadSchemaType.KEYWORD,
    "filename": models.PayloadSchemaType.KEYWORD,
    "metadata_terms": models.PayloadSchemaType.KEYWORD,
    "uploaded_at": models.PayloadSchemaType.DATETIME,
}


def search_filter(tenant_id: str, filters: SearchFilters | None) -> models.Filter:
    """The tenant's points, narrowed by ``filters``: every condition is in ``must``
    beside the tenant's, so no filter can reach another tenant's points."""
    must: list[models.Condition] = [equals("tenant_id", tenant_id)]
    if filters:
        for terms in filters.metadata:
            must.append(
                models.FieldCondition(key="metadata_terms", match=models.MatchAny(any=list(terms)))
            )
        if filters.filenames:
            must.append(
                models.FieldCondition(
                    key="filename", match=models.MatchAny(any=list(filters.filenames))
                )
            )
        if filters.document_ids:
            must.append(
                models.FieldCondition(
                    key="document_id",
                    match=models.MatchAny(any=[str(d) for d in filters.document_ids]),
                )
            )
        if filters.created_from or filters.created_before:
            must.append(
                models.FieldCondition(
                    key="uploaded_at",
                    range=models.DatetimeRange(gte=filters.created_from, lt=filters.created_before),
                )
            )
    return models.Filter(must=must)
