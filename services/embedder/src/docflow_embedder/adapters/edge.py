"""The embedded vector store: Qdrant Edge (Qdrant's engine, Rust, in process).

``EdgeClient`` answers the calls the embedder makes of a ``QdrantClient`` (the
same methods, arguments and qdrant-client models), so ``QdrantIndex``,
``QdrantVectorStore``, re-embedding and rekey run on it unchanged, and a
Qdrant server (``DOCFLOW_QDRANT_URL``) stays the production path.

Edge stores one *shard*: one collection's points, without names, aliases or
collection metadata. This client keeps those itself, under its folder:

- ``collections/<name>/``: one Edge shard per collection;
- ``collections.json``: each collection's vector configuration and metadata,
  and the aliases. It is replaced whole (written aside, synced, renamed), so
  an alias switch is one atomic step that survives restarts;
- ``.lock``: held while open, so a second process cannot open the folder.

Edge runs no background work of its own: points written go to an appendable
segment, searched by brute force, until ``optimize()`` builds the HNSW index.
A thread of this client optimizes (and flushes) each collection a moment
after writes. Edge's calls are safe from several threads at once (no lock
here, unlike qdrant-client's local mode); updates go to its write-ahead log
before they return, so a killed process loses nothing it was told was written.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from qdrant_client.http import models

from docflow_embedder.adapters import edge_models as convert
from docflow_embedder.adapters.edge_models import Unsupported
from docflow_embedder.adapters.edge_registry import Registry, collection_info

logger = logging.getLogger(__name__)

# The most points one grouped query reads to fill its groups.
MAX_GROUPED_POINTS = 10_000


class EdgeClient:
    """Qdrant Edge collections under ``root``, called like a ``QdrantClient``."""

    def __init__(
        self,
        root: Path,
        *,
        optimize_after_s: float = 2.0,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        """``optimize_after_s``: how long after a write a collection's index is brought
        up to date (writes meanwhile are searched by brute force until then).
        ``indexing_threshold_kb``: for new collections, the vector bytes from which a
        segment gets an HNSW index (None: Edge's default, 10 MB, about 6,500 chunks of
        384 dimensions; searched by brute force below that, in a few ms)."""
        self.root = root
        self._indexing_threshold_kb = indexing_threshold_kb
        root.mkdir(parents=True, exist_ok=True)
        (root / "collections").mkdir(exist_ok=True)
        self._lock_file = (root / ".lock").open("a+")  # held while open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(
                f"{root} is open in another process: one embedder process may open the "
                "embedded vector store; run several replicas against a Qdrant server "
                "(DOCFLOW_QDRANT_URL)"
            ) from None
        self._registry = Registry(root)
        self._shards: dict[str, edge.EdgeShard] = {}
        self._dirty: set[str] = set()
        self._wake = threading.Condition()
        self._closed = False
        self._optimize_after_s = optimize_after_s
        self._optimizer = threading.Thread(
            target=self._optimize_loop, name="edge-optimizer", daemon=True
        )
        self._optimizer.start()

    # Collections, their metadata and aliases.

    def _shard(self, name: str) -> edge.EdgeShard:
        with self._registry.lock:
            name = self._registry.resolve(name)
            if name not in self._shards:
                if not self._registry.exists(name):
                    raise ValueError(f"Collection {name} not found")
                self._shards[name] = edge.EdgeShard.load(str(self._registry.path(name)))
            return self._shards[name]

    def collection_exists(self, collection_name: str, **_: Any) -> bool:
        return self._registry.exists(self._registry.resolve(collection_name))

    def create_collection(
        self,
        collection_name: str,
        vectors_config: models.VectorParams | Mapping[str, models.VectorParams] | None = None,
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = None,
        metadata: dict[str, Any] | None = None,
        **_: Any,
    ) -> bool:
        dense = (
            {"": vectors_config}
            if isinstance(vectors_config, models.VectorParams)
            else dict(vectors_config or {})
        )
        sparse = dict(sparse_vectors_config or {})
        config = edge.EdgeConfig(
            vectors={name: convert.vector_params(p) for name, p in dense.items()},
            sparse_vectors={name: convert.sparse_params(p) for name, p in sparse.items()},
            optimizers=edge.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
        )
        with self._registry.lock:
            if self._registry.exists(collection_name):
                raise ValueError(f"Collection {collection_name} already exists")
            path = self._registry.path(collection_name)
            if path.exists():  # left by a crash before it was registered
                shutil.rmtree(path)
            self._shards[collection_name] = edge.EdgeShard.create(str(path), config)
            self._registry.add(collection_name, dense, sparse, metadata)
        return True

    def delete_collection(self, collection_name: str, **_: Any) -> bool:
        with self._registry.lock:
            if not self._registry.exists(collection_name):
                return False
            self._registry.remove(collection_name)
            shard = self._shards.pop(collection_name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self._registry.path(collection_name), ignore_errors=True)
        return True

    def update_collection(
        self,
        collection_name: str,
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = None,
        metadata: dict[str, Any] | None = None,
        vectors_config: Any = None,
        **_: Any,
    ) -> bool:
        """Merge ``metadata`` into the collection's; add sparse vectors it lacks."""
        if vectors_config is not None:
            raise Unsupported("changing dense vector parameters")
        with self._registry.lock:
            name = self._registry.resolve(collection_name)
            shard = self._shard(name)
            have = self._registry.entry(name)["sparse_vectors"]
            added = {v: p for v, p in (sparse_vectors_config or {}).items() if v not in have}
            for vector, params in added.items():
                idf = params.modifier == models.Modifier.IDF
                shard.update(
                    edge.UpdateOperation.create_sparse_vector(
                        vector, modifier=edge.Modifier.Idf if idf else None
                    )
                )
            self._registry.update(name, added, metadata)
        return True

    def get_collections(self, **_: Any) -> models.CollectionsResponse:
        return models.CollectionsResponse(
            collections=[models.CollectionDescription(name=n) for n in self._registry.names()]
        )

    def get_collection(self, collection_name: str, **_: Any) -> models.CollectionInfo:
        name = self._registry.resolve(collection_name)
        return collection_info(self._registry.entry(name), self._shard(name))

    def get_aliases(self, **_: Any) -> models.CollectionsAliasesResponse:
        return models.CollectionsAliasesResponse(
            aliases=[
                models.AliasDescription(alias_name=a, collection_name=c)
                for a, c in sorted(self._registry.aliases().items())
            ]
        )

    def update_collection_aliases(self, change_aliases_operations: Sequence[Any], **_: Any) -> bool:
        """Apply the operations together: all of them, in one write, or none."""
        self._registry.change_aliases(change_aliases_operations)
        return True

    def create_payload_index(
        self,
        collection_name: str,
        field_name: str,
        field_schema: Any = None,
        field_type: Any = None,
        **_: Any,
    ) -> models.UpdateResult:
        schema = convert.payload_schema(field_schema if field_schema is not None else field_type)
        self._shard(collection_name).update(
            edge.UpdateOperation.create_field_index(field_name, schema)
        )
        return _done()

    # Points.

    def upsert(self, collection_name: str, points: Any, **_: Any) -> models.UpdateResult:
        if isinstance(points, models.Batch):
            raise Unsupported("Batch upserts: send PointStruct")
        made = [
            edge.Point(convert._edge_id(p.id), convert.point_vector(p.vector), p.payload)
            for p in points
        ]
        self._shard(collection_name).update(edge.UpdateOperation.upsert_points(made))
        self._touched(collection_name)
        return _done()

    def delete(self, collection_name: str, points_selector: Any, **_: Any) -> models.UpdateResult:
        if isinstance(points_selector, models.FilterSelector):
            points_selector = points_selector.filter
        if isinstance(points_selector, models.Filter):
            operation = edge.UpdateOperation.delete_points_by_filter(
                convert.required_filter(points_selector)
            )
        else:
            if isinstance(points_selector, models.PointIdsList):
                points_selector = points_selector.points
            operation = edge.UpdateOperation.delete_points(convert.ids(list(points_selector)))
        self._shard(collection_name).update(operation)
        self._touched(collection_name)
        return _done()

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[Any],
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> list[models.Record]:
        found = self._shard(collection_name).retrieve(
            convert.ids(list(ids)),
            with_payload=convert.with_payload(with_payload),
            with_vector=convert.with_vectors(with_vectors),
        )
        return [convert.record(r) for r in found]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        order_by: Any = None,
        **_: Any,
    ) -> tuple[list[models.Record], Any]:
        if order_by is not None:
            raise Unsupported("ordered scrolls")
        found, next_offset = self._shard(collection_name).scroll(
            edge.ScrollRequest(
                offset=convert._edge_id(offset) if offset is not None else None,
                limit=limit,
                filter=convert.query_filter(scroll_filter),
                with_payload=convert.with_payload(with_payload),
                with_vector=convert.with_vectors(with_vectors),
            )
        )
        following = convert.point_id(next_offset) if next_offset is not None else None
        return [convert.record(r) for r in found], following

    def count(
        self,
        collection_name: str,
        count_filter: models.Filter | None = None,
        exact: bool = True,
        **_: Any,
    ) -> models.CountResult:
        counted = self._shard(collection_name).count(
            edge.CountRequest(exact=exact, filter=convert.query_filter(count_filter))
        )
        return models.CountResult(count=counted)

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Any = None,
        query_filter: models.Filter | None = None,
        search_params: models.SearchParams | None = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        score_threshold: float | None = None,
        **unknown: Any,
    ) -> models.QueryResponse:
        if unknown.get("lookup_from") is not None:
            raise Unsupported("lookup_from")
        found = self._shard(collection_name).query(
            edge.QueryRequest(
                limit=limit,
                offset=offset,
                query=convert.query(query, using),
                prefetches=convert.prefetches(prefetch),
                with_vector=convert.with_vectors(with_vectors),
                with_payload=convert.with_payload(with_payload),
                filter=convert.query_filter(query_filter),
                score_threshold=score_threshold,
                params=convert.search_params(search_params),
            )
        )
        return models.QueryResponse(points=[convert.scored(p) for p in found])

    def query_points_groups(
        self,
        collection_name: str,
        group_by: str,
        query: Any = None,
        limit: int = 10,
        group_size: int = 3,
        with_payload: Any = True,
        **rest: Any,
    ) -> models.GroupsResult:
        """The best ``limit`` groups of points sharing ``group_by``'s value (a group's rank
        is its best hit's), each with its best ``group_size`` hits. Edge has no grouping:
        this asks for twice as many points until the groups are full or the points run
        out (at most ``MAX_GROUPED_POINTS``), so the answer is a server's."""
        if rest.get("with_lookup") is not None:
            raise Unsupported("grouped queries with_lookup")
        wanted = limit * group_size
        while True:
            found = self.query_points(
                collection_name, query=query, limit=wanted, with_payload=True, **rest
            ).points
            groups: dict[Any, list[models.ScoredPoint]] = {}
            for point in found:
                key = _value_at(point.payload, group_by)
                if isinstance(key, str | int) and not isinstance(key, bool):
                    hits = groups.setdefault(key, [])
                    if len(hits) < group_size:
                        hits.append(point)
            best = list(groups.items())[:limit]
            full = len(best) == limit and all(len(h) == group_size for _, h in best)
            if full or len(found) < wanted or wanted >= MAX_GROUPED_POINTS:
                break
            wanted = min(wanted * 2, MAX_GROUPED_POINTS)
        if with_payload is not True:
            keep = convert.with_payload(with_payload)
            for _, hits in best:
                for hit in hits:
                    hit.payload = _selected(hit.payload, keep)
        return models.GroupsResult(
            groups=[models.PointGroup(id=key, hits=hits) for key, hits in best]
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise Unsupported(f"QdrantClient.{name}")

    # Index upkeep.

    def _touched(self, collection_name: str) -> None:
        with self._wake:
            self._dirty.add(self._registry.resolve(collection_name))
            self._wake.notify()

    def optimize(self) -> None:
        """Bring every written collection's index up to date now, and flush it."""
        with self._wake:
            dirty, self._dirty = self._dirty, set()
        waiting = sorted(dirty)
        while waiting:
            try:
                shard = self._shard(waiting[0])
                shard.optimize()
                shard.flush()
            except ValueError:
                pass  # deleted since
            except Exception:
                with self._wake:  # tried again at the next round
                    self._dirty.update(waiting)
                raise
            waiting.pop(0)

    def _optimize_loop(self) -> None:
        while self._writes_settled():
            try:
                self.optimize()
            except Exception:
                logger.exception("optimizing the embedded vector store failed (retried later)")

    def _writes_settled(self) -> bool:
        """Wait for a write, then the interval (writes come in runs: index at most once
        per interval while they go on); False once closed."""
        with self._wake:
            self._wake.wait_for(lambda: self._dirty or self._closed)
            settled = time.monotonic() + self._optimize_after_s
            while not self._closed and (left := settled - time.monotonic()) > 0:
                self._wake.wait(left)
            return not self._closed

    def close(self, **_: Any) -> None:
        """Stop the optimizer, flush and close every collection, release the folder."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        self._optimizer.join()
        with self._registry.lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()
        self._lock_file.close()


def _value_at(payload: dict[str, Any] | None, path: str) -> Any:
    """The payload's value at a dotted ``path`` (``metadata.team``), or None."""
    value: Any = payload
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _selected(payload: dict[str, Any] | None, keep: Any) -> dict[str, Any] | None:
    """``payload`` as ``with_payload`` asks: none (False), or only the keys listed."""
    if payload is None or keep is False:
        return None
    if isinstance(keep, list):
        return {k: v for k, v in payload.items() if k in keep}
    raise Unsupported("grouped queries with a payload selector")


def _done() -> models.UpdateResult:
    return models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED)
