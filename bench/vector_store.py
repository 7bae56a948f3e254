"""The embedded vector store: Qdrant Edge against qdrant-client's local mode.

Both through the embedder's own adapter (``QdrantVectorStore``, the calls the
service makes), each engine and size in a process of its own (so memory is
its own):

- fill: ``--sizes`` points (default 10,000 and 100,000) of 384 dimensions,
  upserted 64 at a time (points/s), payloads like the embedder's; writes
  alone (Edge's optimizer thread held back);
- Edge only: searches before its index is built, and how long building it
  (``optimize``) takes; the service's optimizer thread does that after writes;
- search: the tenant's 10 nearest chunks, p50/p99 over ``--queries`` of wall
  time and of the process's CPU time per search (which other programs' load
  does not inflate); each query is a stored vector plus noise. Recall@10
  against an exact search;
- reopen: closing and opening the store again (a restart) and the first search;
- concurrency, on the 10,000-point store: two writer threads (documents of 16
  chunks written, counted, every other one deleted) and two search threads for
  ``--seconds``; errors, writes/s, search p50/p99 under writes, and whether
  the count at the end is what was kept. Local mode goes through its global
  lock (without it, it corrupts itself); Edge has none.

The vectors are synthetic, clustered like chunks: one random direction per
document of 64 chunks, each chunk spread around it (cosine about 0.5 within
a document, about 0 across). Latency depends on the count and the dimension;
recall depends on the data (on unclustered Gaussian vectors, the worst case
for HNSW, it was far lower: see BENCHMARKS.md). Writes
bench/results/vector_store.json.

    .venv/bin/python bench/vector_store.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import numpy as np
import numpy.typing as npt
from harness import write_report
from qdrant_client import QdrantClient
from qdrant_client.http import models

from docflow_embedder.adapters.edge import EdgeClient
from docflow_embedder.adapters.qdrant import QdrantVectorStore, _OneCallAtATime, local_client
from docflow_embedder.domain import VectorPoint, point_id

DIMENSION = 384
BATCH = 64
CHUNKS_PER_DOCUMENT = 16
# Chunks per document of the filled store (one write of 64, as a poll's batches).
DOCUMENT = 64
TENANT = "bench"
COLLECTION = "docflow_bench_384"
# Local mode's searches grow to seconds at 100,000 points: fewer of them there.
LOCAL_QUERIES_AT_100K = 30
LOCAL_ON_DISK_UP_TO = 20_000


def vectors(n: int, seed: int) -> npt.NDArray[np.float32]:
    """``n`` unit vectors like a document's chunks: one direction per document of
    ``DOCUMENT`` chunks, each chunk spread around it (cosine about 0.5 within a
    document, about 0 across documents)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(-(-n // DOCUMENT), DIMENSION))
    made = centres.repeat(DOCUMENT, axis=0)[:n] + rng.normal(size=(n, DIMENSION))
    made /= np.linalg.norm(made, axis=1, keepdims=True)
    return made.astype(np.float32)


def document_points(
    document: UUID, rows: npt.NDArray[np.float32], first: int = 0
) -> list[VectorPoint]:
    return [
        VectorPoint(
            id=point_id(TENANT, document, first + i, "bench"),
            vector=row,
            payload={
                "tenant_id": TENANT,
                "document_id": str(document),
                "chunk_index": first + i,
                "attempt": 1,
                "page": 1,
                "page_end": 1,
                "text": f"chunk {first + i} of {document}",
            },
        )
        for i, row in enumerate(rows)
    ]


def open_store(
    engine: str, path: Path | None, *, optimize_after_s: float = 2.0
) -> tuple[Any, QdrantVectorStore]:
    """``path`` None: local mode in memory (same search code, no SQLite)."""
    if engine == "edge":
        client: Any = EdgeClient(cast(Path, path), optimize_after_s=optimize_after_s)
    elif path is None:
        client = _OneCallAtATime(QdrantClient(":memory:"))
    else:
        client = local_client(path)
    store = QdrantVectorStore(
        cast(QdrantClient, client), COLLECTION, DIMENSION, index_payload=engine == "edge"
    )
    return client, store


def percentiles(seconds: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    """p50/p99 of wall time; with ``cpu``, those of the process's CPU time per call
    too (every thread's: Edge searches in threads of its own), which the load others
    put on the machine does not inflate."""

    def at(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000, 2)

    figures = {
        "p50_ms": at(seconds, 0.5),
        "p99_ms": at(seconds, 0.99),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
        "n": len(seconds),
    }
    if cpu:
        figures |= {"cpu_p50_ms": at(cpu, 0.5), "cpu_p99_ms": at(cpu, 0.99)}
    return figures


def timed_searches(store: QdrantVectorStore, queries: npt.NDArray[np.float32]) -> dict[str, float]:
    took, used = [], []
    for query in queries:
        start, cpu = time.perf_counter(), time.process_time()
        store.search(query, TENANT, 10)
        took.append(time.perf_counter() - start)
        used.append(time.process_time() - cpu)
    return percentiles(took, used)


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def one(engine: str, size: int, queries_wanted: int, seconds: float) -> dict[str, Any]:
    """Fill, index, search, reopen and (at the smallest size) hammer one store."""
    data = vectors(size, seed=size)
    result: dict[str, Any] = {"engine": engine, "points": size}
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as home:
        # Local mode on disk commits one SQLite transaction per point (14 ms each
        # here): 100,000 would take half an hour, so that size is filled in memory.
        in_memory = engine == "local" and size >= LOCAL_ON_DISK_UP_TO
        path = None if in_memory else Path(home) / "qdrant"
        result["storage"] = "memory" if in_memory else "disk"
        # The fill measures writes alone: the index is built once after it (the
        # service's optimizer thread builds it about 2 s after writes).
        client, store = open_store(engine, path, optimize_after_s=3600)
        start = time.perf_counter()
        for first in range(0, size, DOCUMENT):
            document = UUID(int=first + 1)
            rows = data[first : first + DOCUMENT]
            points = document_points(document, rows)
            for at in range(0, len(points), BATCH):
                store.upsert(points[at : at + BATCH])
        took = time.perf_counter() - start
        result["upsert_points_per_s"] = round(size / took, 1)
        result["fill_s"] = round(took, 2)
        rng = np.random.default_rng(1)
        wanted = queries_wanted
        if engine == "local" and size >= 100_000:
            wanted = min(wanted, LOCAL_QUERIES_AT_100K)
        picks = rng.choice(size, size=wanted, replace=False)
        noise = rng.normal(scale=0.03, size=(wanted, DIMENSION)).astype(np.float32)
        queries = data[picks] + noise
        if engine == "edge":
            result["search_before_index"] = timed_searches(store, queries[:20])
            start = time.perf_counter()
            client.optimize()
            result["index_s"] = round(time.perf_counter() - start, 2)
        timed_searches(store, queries[:5])  # warm up
        result["search"] = timed_searches(store, queries)
        # Local mode always compares with every point: its recall is 1 by construction.
        result["recall_at_10"] = recall(client, queries[:50]) if engine == "edge" else 1.0
        if path is not None:
            client.close()
            start = time.perf_counter()
            client, store = open_store(engine, path)
            store.search(queries[0], TENANT, 10)
            result["reopen_and_first_search_s"] = round(time.perf_counter() - start, 2)
            result["count_after_reopen"] = store.count()
        if size == min_size:
            result["concurrency"] = hammer(store, seconds)
        client.close()
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def recall(client: Any, queries: npt.NDArray[np.float32]) -> float | None:
    """Share of the exact 10 nearest that the store's own search finds."""
    found = 0
    for query in queries:
        ask = {"query": query.tolist(), "limit": 10, "with_payload": False}
        got = {p.id for p in client.query_points(COLLECTION, **ask).points}
        exact = client.query_points(
            COLLECTION, search_params=models.SearchParams(exact=True), **ask
        ).points
        found += len(got & {p.id for p in exact})
    return round(found / (10 * len(queries)), 4)


def hammer(store: QdrantVectorStore, seconds: float) -> dict[str, Any]:
    """Two writers and two searchers at once for ``seconds``."""
    before = store.count()
    errors: list[str] = []
    kept: list[int] = []
    writes: list[int] = []
    searched: list[float] = []
    stop = time.monotonic() + seconds
    rows = vectors(CHUNKS_PER_DOCUMENT, seed=99)
    queries = vectors(64, seed=98)

    def writer() -> None:
        mine = written = 0
        # Not uuid4(): os.urandom blocked for ~70 ms a call on the loaded machine.
        prefix = threading.get_ident() << 64
        try:
            n = 0
            while time.monotonic() < stop:
                document = UUID(int=prefix + n)
                store.upsert(document_points(document, rows))
                written += CHUNKS_PER_DOCUMENT
                if store.stored(TENANT, document, 1) != CHUNKS_PER_DOCUMENT:
                    errors.append(f"document {document}: not all chunks counted")
                if n % 2:
                    store.delete_document(TENANT, document)
                else:
                    mine += 1
                n += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        kept.append(mine)
        writes.append(written)

    def searcher() -> None:
        n = 0
        try:
            while time.monotonic() < stop:
                start = time.perf_counter()
                store.search(queries[n % len(queries)], TENANT, 10)
                searched.append(time.perf_counter() - start)
                n += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer) for _ in range(2)]
    threads += [threading.Thread(target=searcher) for _ in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    expected = before + sum(kept) * CHUNKS_PER_DOCUMENT
    return {
        "writers": 2,
        "searchers": 2,
        "seconds": round(took, 1),
        "errors": errors[:5],
        "error_count": len(errors),
        "points_written_per_s": round(sum(writes) / took, 1),
        "search_under_writes": percentiles(searched) if searched else None,
        "count_as_expected": store.count() == expected,
    }


min_size = 0


def main() -> None:
    global min_size
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", default=["edge", "local"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    min_size = min(args.sizes)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.queries, args.seconds)))
        return
    runs = []
    for engine in args.engines:
        for size in args.sizes:
            command = [sys.executable, __file__, "--one", engine, str(size)]
            command += ["--queries", str(args.queries), "--seconds", str(args.seconds)]
            command += ["--sizes", *map(str, args.sizes)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr)
    write_report(
        "vector_store",
        {
            "dimension": DIMENSION,
            "vectors": "synthetic, clustered like chunks (one direction per 64-chunk document, "
            "cosine about 0.5 within one, about 0 across); queries = a stored vector + noise",
            "batch": BATCH,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
