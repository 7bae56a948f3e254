"""What Qdrant Edge does not keep, kept beside its shards: collection names, their vector
configuration and metadata, and the aliases (``collections.json``).

The file is replaced whole at every change (written aside, synced, renamed,
the folder synced), so a change of several aliases is one atomic step: after a
crash the old file or the new one is there, never a mix.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qdrant_client.http import models

from docflow_embedder.adapters.edge_models import SCHEMAS, Unsupported

REGISTRY = "collections.json"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_SCHEMA_TYPES = {edge_type: ours for ours, edge_type in SCHEMAS.items()}


class Registry:
    """Collections and aliases under ``root``; every method is safe from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        path = root / REGISTRY
        self._data: dict[str, Any] = (
            json.loads(path.read_text()) if path.exists() else {"collections": {}, "aliases": {}}
        )

    def path(self, name: str) -> Path:
        """The folder of collection ``name``'s shard."""
        if not _NAME.match(name):
            raise ValueError(f"not a collection name: {name!r}")
        return self.root / "collections" / name

    def resolve(self, name: str) -> str:
        """The collection an alias names (a collection's own name: itself)."""
        with self.lock:
            return str(self._data["aliases"].get(name, name))

    def exists(self, name: str) -> bool:
        with self.lock:
            return name in self._data["collections"]

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self._data["collections"])

    def entry(self, name: str) -> dict[str, Any]:
        with self.lock:
            if name not in self._data["collections"]:
                raise ValueError(f"Collection {name} not found")
            found: dict[str, Any] = json.loads(json.dumps(self._data["collections"][name]))
            return found

    def aliases(self) -> dict[str, str]:
        with self.lock:
            return dict(self._data["aliases"])

    def add(
        self,
        name: str,
        dense: Mapping[str, models.VectorParams],
        sparse: Mapping[str, models.SparseVectorParams],
        metadata: dict[str, Any] | None,
    ) -> None:
        with self.lock:
            data = self._copy()
            data["collections"][name] = {
                "vectors": {n: p.model_dump(mode="json") for n, p in dense.items()},
                "sparse_vectors": {n: p.model_dump(mode="json") for n, p in sparse.items()},
                "metadata": metadata,
            }
            self._write(data)

    def remove(self, name: str) -> None:
        """Forget collection ``name`` and the aliases that name it (as a server does)."""
        with self.lock:
            data = self._copy()
            del data["collections"][name]
            data["aliases"] = {a: c for a, c in data["aliases"].items() if c != name}
            self._write(data)

    def update(
        self,
        name: str,
        sparse: Mapping[str, models.SparseVectorParams],
        metadata: dict[str, Any] | None,
    ) -> None:
        """Record added sparse vectors; merge ``metadata`` into the collection's."""
        with self.lock:
            data = self._copy()
            entry = data["collections"][name]
            for vector, params in sparse.items():
                entry["sparse_vectors"][vector] = params.model_dump(mode="json")
            if metadata is not None:
                entry["metadata"] = {**(entry["metadata"] or {}), **metadata}
            self._write(data)

    def change_aliases(self, operations: Sequence[Any]) -> None:
        """Apply alias operations together: all of them, in one write, or none."""
        with self.lock:
            data = self._copy()
            aliases: dict[str, str] = data["aliases"]
            for operation in operations:
                if isinstance(operation, models.CreateAliasOperation):
                    made = operation.create_alias
                    if made.collection_name not in data["collections"]:
                        raise ValueError(f"Collection {made.collection_name} not found")
                    aliases[made.alias_name] = made.collection_name
                elif isinstance(operation, models.DeleteAliasOperation):
                    if aliases.pop(operation.delete_alias.alias_name, None) is None:
                        raise ValueError(f"Alias {operation.delete_alias.alias_name} not found")
                elif isinstance(operation, models.RenameAliasOperation):
                    renamed = operation.rename_alias
                    if renamed.old_alias_name not in aliases:
                        raise ValueError(f"Alias {renamed.old_alias_name} not found")
                    aliases[renamed.new_alias_name] = aliases.pop(renamed.old_alias_name)
                else:
                    raise Unsupported(f"the alias operation {type(operation).__name__}")
            self._write(data)

    def _copy(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self._data))
        return copied

    def _write(self, data: dict[str, Any]) -> None:
        aside = self.root / f"{REGISTRY}.tmp"
        with aside.open("w") as file:
            json.dump(data, file, indent=1, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        aside.replace(self.root / REGISTRY)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._data = data


def collection_info(entry: dict[str, Any], shard: Any) -> models.CollectionInfo:
    """A collection as a Qdrant server describes it: its registry entry and the Edge
    shard's figures (points, segments, payload indexes)."""
    info = shard.info()
    dense = {n: models.VectorParams.model_validate(p) for n, p in entry["vectors"].items()}
    sparse = {
        n: models.SparseVectorParams.model_validate(p) for n, p in entry["sparse_vectors"].items()
    }
    return models.CollectionInfo(
        status=models.CollectionStatus.GREEN,
        optimizer_status=models.OptimizersStatusOneOf.OK,
        indexed_vectors_count=info.indexed_vectors_count,
        points_count=info.points_count,
        segments_count=info.segments_count,
        payload_schema={
            key: models.PayloadIndexInfo(
                data_type=_SCHEMA_TYPES[index.data_type], points=index.points
            )
            for key, index in info.payload_schema.items()
        },
        config=models.CollectionConfig(
            params=models.CollectionParams(
                vectors=dense[""] if set(dense) == {""} else dense,
                sparse_vectors=sparse or None,
            ),
            hnsw_config=models.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            optimizer_config=models.OptimizersConfig(
                deleted_threshold=0.2,
                vacuum_min_vector_number=1000,
                default_segment_number=0,
                flush_interval_sec=5,
            ),
            metadata=entry["metadata"],
        ),
    )
