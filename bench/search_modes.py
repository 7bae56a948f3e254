"""Search latency by mode (dense, keyword, hybrid) on the embedded stores: Qdrant Edge
(the default) at the corpus's size and larger, and qdrant-client's local mode beside it.

The chunks are GeoTopo's (cut by the extractor), repeated under new document ids
until a size is reached; their dense vectors come from the serving engine
(OpenVINO, all-MiniLM-L6-v2) and are computed once. Each query is ten words of a
chunk. ``end_to_end`` is the embedder's own search path (``search_chunks``: the
query embedded for dense and hybrid, then Qdrant); ``store`` is Qdrant's part alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from embedder import DOCUMENT, corpus_batches
from harness import write_report

from docflow_embedder.adapters.edge import EdgeClient
from docflow_embedder.adapters.embedded import Engine, open_embedded
from docflow_embedder.adapters.engine import EngineEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.domain import VectorPoint, point_id
from docflow_embedder.handlers import search_chunks
from docflow_embedder.keywords import query_vector

MODES = ("dense", "keyword", "hybrid")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[845, 5000, 20000])
    parser.add_argument(
        "--local-sizes",
        type=int,
        nargs="*",
        default=[845],
        help="sizes also run on local mode (it scores sparse vectors in Python: slow)",
    )
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        texts = [c.text for b in corpus_batches(Path(tmp)) for c in b.chunks]
    model = EngineEmbedder(threads=2)
    vectors = model.embed(texts)
    queries = []
    for i in range(args.queries):
        words = texts[(i * 7) % len(texts)].split()
        middle = len(words) // 2
        queries.append(" ".join(words[max(0, middle - 5) : middle + 5]))
    stores: dict[str, dict[str, Any]] = {}
    engines: list[tuple[Engine, list[int]]] = [("edge", args.sizes), ("local", args.local_sizes)]
    for engine, sizes in engines:
        stores[engine] = {
            str(size): measure(engine, size, model, texts, vectors, queries) for size in sizes
        }
    write_report(
        "search_modes",
        {
            "document": DOCUMENT.name,
            "distinct_chunks": len(texts),
            "queries": len(queries),
            "limit": 10,
            "store": "qdrant edge",
            "sizes": stores["edge"],
            "local_mode": stores["local"],
        },
    )


def measure(
    engine: Engine,
    size: int,
    model: EngineEmbedder,
    texts: list[str],
    vectors: Any,
    queries: list[str],
) -> dict[str, Any]:
    """Write ``size`` chunks into a new embedded store of kind ``engine`` and time the
    queries in each mode."""
    with tempfile.TemporaryDirectory(prefix="docflow-bench-qdrant-") as home:
        client = open_embedded(Path(home), engine)
        # As the embedder does: a server and Edge index the payload, local mode scans.
        store = QdrantVectorStore(
            client,
            collection_name(model.model, model.dimension),
            model.dimension,
            index_payload=engine == "edge",
        )
        written = 0
        started = time.perf_counter()
        while written < size:
            document_id = uuid.uuid4()
            take = min(len(texts), size - written)
            store.upsert(
                [
                    VectorPoint(
                        id=point_id("bench", document_id, i, model.model),
                        vector=vectors[i],
                        payload={
                            "tenant_id": "bench",
                            "document_id": str(document_id),
                            "chunk_index": i,
                            "text": texts[i],
                        },
                    )
                    for i in range(take)
                ]
            )
            written += take
        write_s = time.perf_counter() - started
        run: dict[str, Any] = {"chunks": written, "write_s": round(write_s, 1)}
        if isinstance(client, EdgeClient):
            # What the service's optimizer thread does about 2 s after writes.
            started = time.perf_counter()
            client.optimize()
            run["index_s"] = round(time.perf_counter() - started, 1)
        for mode in MODES:
            end_to_end, store_only = [], []
            for query in queries:
                t0 = time.perf_counter()
                asyncio.run(
                    search_chunks(query, "bench", 10, embedder=model, vectors=store, mode=mode)
                )
                end_to_end.append(time.perf_counter() - t0)
                [vector] = model.embed([query]) if mode != "keyword" else [None]
                keywords = query_vector(query) if mode != "dense" else None
                t0 = time.perf_counter()
                store.search(vector, "bench", 10, keywords)
                store_only.append(time.perf_counter() - t0)
            run[mode] = {"end_to_end": figures(end_to_end), "store": figures(store_only)}
        client.close()
    print(engine, size, run, flush=True)
    return run


if __name__ == "__main__":
    main()
