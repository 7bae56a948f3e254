"""The embedded vector store (no Qdrant server): Qdrant Edge by default, or
qdrant-client's local mode; and the one-off copy from local mode to Edge.

Both live in the same folder (``DOCFLOW_QDRANT_PATH``, by default
``$DOCFLOW_DATA_DIR/qdrant``): local mode's files at its top (``meta.json``,
``collection/``), Edge's under ``edge/``. An embedder that finds local mode's
files and no ``edge/`` copies every collection (vectors, payloads, metadata)
and the aliases into Edge before it starts: the vectors are copied, not
embedded again. The copy is built in ``edge.partial/`` and renamed to
``edge/`` once complete, so an interrupted copy starts over. Local mode's
files are left as they were (delete them once Edge serves).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal, cast

from qdrant_client import QdrantClient
from qdrant_client.http import models

from docflow_embedder.adapters.edge import EdgeClient
from docflow_embedder.adapters.qdrant import local_client

logger = logging.getLogger(__name__)

Engine = Literal["edge", "local"]
EDGE_FOLDER = "edge"
PAGE = 256


def open_embedded(path: Path, engine: Engine = "edge") -> QdrantClient:
    """The embedded store in ``path``; Edge copies local mode's collections first."""
    if engine == "local":
        return local_client(path)
    if not (path / EDGE_FOLDER).exists() and (path / "meta.json").exists():
        migrate_local(path)
    return cast(QdrantClient, EdgeClient(path / EDGE_FOLDER))


def migrate_local(path: Path) -> dict[str, int]:
    """Copy local mode's collections and aliases in ``path`` into Edge (``path/edge``);
    returns how many points each collection had."""
    partial = path / f"{EDGE_FOLDER}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    source = QdrantClient(path=str(path))
    target = EdgeClient(partial)
    copied: dict[str, int] = {}
    try:
        for described in source.get_collections().collections:
            name = described.name
            info = source.get_collection(name)
            params = info.config.params
            target.create_collection(
                name,
                vectors_config=cast(models.VectorParams, params.vectors),
                sparse_vectors_config=params.sparse_vectors,
                metadata=info.config.metadata,
            )
            copied[name] = _copy_points(source, target, name)
            logger.info("copied %d points of %s from local mode to Qdrant Edge", copied[name], name)
        aliases = source.get_aliases().aliases
        if aliases:
            target.update_collection_aliases(
                [
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(
                            collection_name=a.collection_name, alias_name=a.alias_name
                        )
                    )
                    for a in aliases
                ]
            )
        target.optimize()
    finally:
        target.close()
        source.close()
    partial.rename(path / EDGE_FOLDER)
    logger.warning(
        "the embedded vector store is now Qdrant Edge in %s; local mode's files beside it "
        "are no longer read and may be deleted",
        path / EDGE_FOLDER,
    )
    return copied


def _copy_points(source: QdrantClient, target: EdgeClient, name: str) -> int:
    copied = 0
    offset: models.ExtendedPointId | None = None
    while True:
        records, offset = source.scroll(
            name, limit=PAGE, offset=offset, with_payload=True, with_vectors=True
        )
        points = [
            models.PointStruct(id=r.id, vector=r.vector, payload=r.payload)
            for r in records
            if r.vector is not None
        ]
        if points:
            target.upsert(name, points)
        copied += len(points)
        if offset is None:
            return copied
