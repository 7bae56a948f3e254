"""Retrieval quality: a BEIR test collection uploaded to the running system and
searched through ``GET /v1/search``, scored against its relevance judgements.

Starts a real Kafka broker (from its jars) and the services as ``make run``
does (gateway, status service, extractor, embedder, OCR consumer; Qdrant in
local mode under the stack's data folder). Every document of the collection
(``make beir``; SciFact by default) is uploaded as a Markdown file, its title
as the heading, under its BEIR id (``MED-10.md``), from a few concurrent
clients; the run waits until the status service has every document ended.
Then every test query is sent through ``/v1/search`` (50 chunks, the most the
endpoint gives) once per mode (``mode=dense|keyword|hybrid``), one after the
other. Chunks are mapped back to documents (each document ranked by its best
chunk) and scored with trec_eval's nDCG@10 and recall@10 (bench/beir_collection.py).

A mode is measured only where the gateway declares the ``mode`` parameter in
its OpenAPI document: a server without it searches by meaning only, so its
figures are reported as dense, and keyword and hybrid as not honoured (never
the same figures under three names).

Reports the figures per mode beside the collection's published BM25 and
all-MiniLM-L6-v2 figures, documents/min of the whole ingestion (first upload
to the last document's end, as the status service recorded it) and the
per-query latency (p50/p99) of each mode. Writes
bench/results/retrieval_quality.json.

    make beir BEIR_SOURCE=git && .venv/bin/python bench/retrieval_quality.py

For tuning on another split than test (same upload), with a setting changed:

    .venv/bin/python bench/retrieval_quality.py --also-split train \\
        --setting DOCFLOW_CHUNK_TOKENS=254 --hits-out /tmp/hits.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import beir_collection as beir
import httpx
from harness import running_system, write_report

from docflow_local.stack import Stack

MODES = ("dense", "keyword", "hybrid")
CHUNKS_PER_QUERY = 50  # /v1/search's most
MAX_QUERY_CHARS = 2000  # /v1/search's longest query
TERMINAL = ("completed", "failed", "cancelled")

# Published figures on the test split, nDCG@10 and recall@10 (None: not published).
PUBLISHED: dict[str, dict[str, dict[str, Any]]] = {
    "nfcorpus": {
        "BM25": {
            "ndcg_at_10": 0.325,
            "recall_at_10": None,
            "source": "BEIR (Thakur et al., NeurIPS 2021 Datasets and Benchmarks), Table 2: "
            "BM25 (Elasticsearch); the paper gives recall@100 (0.250), not recall@10",
        },
        "all-MiniLM-L6-v2": {
            "ndcg_at_10": 0.3143,
            "recall_at_10": None,
            "source": "MTEB results (embeddings-benchmark/results, "
            "sentence-transformers__all-MiniLM-L6-v2, NFCorpus.json, mteb 1.2.0): "
            "NDCG@10 0.31433; recall@10 not in that file",
        },
    },
    "scifact": {
        "BM25": {
            "ndcg_at_10": 0.665,
            "recall_at_10": None,
            "source": "BEIR (Thakur et al., NeurIPS 2021 Datasets and Benchmarks), Table 2: "
            "BM25 (Elasticsearch); the paper gives recall@100 (0.908), not recall@10",
        },
        "all-MiniLM-L6-v2": {
            "ndcg_at_10": 0.6739,
            "recall_at_10": None,
            "source": "MTEB results (embeddings-benchmark/results, "
            "sentence-transformers__all-MiniLM-L6-v2, SciFact.json, mteb 1.2.0): "
            "NDCG@10 0.67393; recall@10 not in that file",
        },
    },
}


# Others' measurements of the same kind of system, for comparison (not goals).
REFERENCES: dict[str, str] = {
    "scifact": 'Qdrant\'s article "How to Tune Hybrid Search in Qdrant" (qdrant.tech, '
    "search tuning, 2026) measured SciFact with all-MiniLM-L6-v2 and Qdrant's BM25 on "
    "one Qdrant: nDCG@10 dense 0.6239, sparse 0.6886, both fused by RRF (k=2) 0.7175",
}


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    return str(path.relative_to(beir.ROOT)) if path.is_relative_to(beir.ROOT) else str(path)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def chosen(collection: beir.Collection, queries: int, documents: int) -> beir.Collection:
    """The first ``queries`` queries and at most ``documents`` documents (those they
    judge first), for a quick run; 0 keeps all."""
    kept = dict(list(collection.queries.items())[:queries]) if queries else collection.queries
    qrels = {q: collection.qrels[q] for q in kept}
    if not documents:
        return beir.Collection(collection.name, collection.documents, kept, qrels)
    judged = [d for q in kept for d in qrels[q] if d in collection.documents]
    order = list(dict.fromkeys([*judged, *collection.documents]))[:documents]
    return beir.Collection(
        collection.name, {d: collection.documents[d] for d in order}, kept, qrels
    )


async def search_modes(http: httpx.AsyncClient, gateway: str) -> dict[str, Any]:
    """Whether the gateway declares ``mode`` on /v1/search, and its values."""
    spec = (await http.get(f"{gateway}/openapi.json")).raise_for_status().json()
    parameters = spec["paths"]["/v1/search"]["get"].get("parameters", [])
    mode = next((p for p in parameters if p.get("name") == "mode"), None)
    if mode is None:
        return {"declared": False}
    schema = mode.get("schema", {})

    def values_of(part: dict[str, Any]) -> list[str]:
        # An enum inline, behind a $ref (a Python Enum), or in anyOf (Optional).
        if ref := part.get("$ref"):
            part = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        found: list[str] = part.get("enum", [])
        return found or [v for option in part.get("anyOf", []) for v in values_of(option)]

    return {"declared": True, "values": values_of(schema), "default": schema.get("default")}


async def upload(
    http: httpx.AsyncClient, gateway: str, collection: beir.Collection, clients: int
) -> dict[str, str]:
    """Every document as a Markdown file; docflow id → BEIR id."""
    waiting = list(collection.documents.items())
    waiting.reverse()
    uploaded: dict[str, str] = {}

    async def client() -> None:
        while waiting:
            document, (title, text) = waiting.pop()
            body = beir.as_markdown(title, text).encode()
            for _attempt in range(10):
                response = await http.post(
                    f"{gateway}/v1/documents",
                    params={"dedup": "false"},  # a collection may hold the same text twice
                    files=[("file", (beir.upload_name(document), body, "text/markdown"))],
                )
                if response.status_code not in (429, 503):
                    break
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            response.raise_for_status()
            [accepted] = response.json()["documents"]
            uploaded[accepted["id"]] = document

    await asyncio.gather(*(client() for _ in range(clients)))
    return uploaded


async def all_ended(http: httpx.AsyncClient, status: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = (await http.get(f"{status}/v1/documents/counts")).raise_for_status().json()
        ended = sum(counts[s] for s in TERMINAL)
        if ended >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ended} of {count} documents ended after {timeout_s} s")
        await asyncio.sleep(1.0)


async def statuses(http: httpx.AsyncClient, status: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(f"{status}/v1/documents", params=params)).raise_for_status().json()
        found += page["documents"]
        if not (cursor := page["next_cursor"]):
            return found


async def run_queries(
    http: httpx.AsyncClient,
    gateway: str,
    collection: beir.Collection,
    beir_ids: dict[str, str],
    mode: str | None,
    hits: dict[str, list[tuple[str, int, float]]] | None = None,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Every query once (``mode`` None: no mode parameter); the document rankings
    and each query's round trip in ms. ``hits``: filled with each query's chunks
    as (BEIR id, chunk index, score), in the order returned."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for query, text in collection.queries.items():
        params: dict[str, str | int] = {
            "q": text[:MAX_QUERY_CHARS],
            "limit": CHUNKS_PER_QUERY,
            **({"mode": mode} if mode else {}),
        }
        for _attempt in range(10):
            started = time.perf_counter()
            response = await http.get(f"{gateway}/v1/search", params=params)
            took = (time.perf_counter() - started) * 1000
            if response.status_code not in (429, 503):
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        latencies.append(took)
        results = response.json()["results"]
        run[query] = beir.best_per_document(results, beir_ids)
        if hits is not None:
            hits[query] = [
                (beir_ids[str(r["document_id"])], int(r["chunk_index"]), float(r["score"]))
                for r in results
                if str(r["document_id"]) in beir_ids
            ]
    return run, latencies


async def measure(
    stack: Stack,
    collection: beir.Collection,
    modes: list[str],
    clients: int,
    others: dict[str, beir.Collection] | None = None,
    hits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload ``collection``, then score every mode on its test queries and on the
    queries of the ``others`` splits (same documents). ``hits``: filled with every
    split's and mode's chunks per query (for tuning off line)."""
    gateway, status = stack.url("gateway"), stack.url("status")
    async with httpx.AsyncClient(timeout=300) as http:
        support = await search_modes(http, gateway)
        started_at, started = time.time(), time.perf_counter()
        beir_ids = await upload(http, gateway, collection, clients)
        uploads_s = time.perf_counter() - started
        print(f"uploaded {len(beir_ids)} documents in {uploads_s:.0f} s", flush=True)
        await all_ended(http, status, len(beir_ids), timeout_s=max(1800.0, 1.0 * len(beir_ids)))
        seen = [d for d in await statuses(http, status) if d["id"] in beir_ids]
        ended = max(datetime.fromisoformat(d["completed_at"] or d["updated_at"]) for d in seen)
        ingest_s = ended.timestamp() - started_at
        print(f"all ended {ingest_s:.0f} s after the first upload", flush=True)

        by_mode: dict[str, Any] = {}
        for mode in modes:
            if support["declared"] and mode not in support.get("values", [mode]):
                by_mode[mode] = {"measured": False, "why": "the gateway does not offer it"}
                continue
            if not support["declared"] and mode != "dense":
                by_mode[mode] = {
                    "measured": False,
                    "why": "not honoured: /v1/search has no mode parameter here "
                    "(it searches by meaning only)",
                }
                continue
            began = time.perf_counter()
            run, latencies = await run_queries(
                http, gateway, collection, beir_ids, mode if support["declared"] else None
            )
            scores = beir.evaluate(collection.qrels, run)
            by_mode[mode] = {
                "measured": True,
                **scores,
                "queries": len(latencies),
                "p50_ms": round(statistics.median(latencies), 1),
                "p99_ms": round(percentile(latencies, 0.99), 1),
                "seconds": round(time.perf_counter() - began, 1),
                **({} if support["declared"] else {"how": "no mode parameter: dense only"}),
            }
            print(f"{mode}: {by_mode[mode]}", flush=True)

        by_split: dict[str, dict[str, Any]] = {}
        for split, other in (others or {}).items():
            by_split[split] = {"queries": len(other.queries)}
            for mode in (m for m in modes if by_mode.get(m, {}).get("measured")):
                kept: dict[str, list[tuple[str, int, float]]] = {}
                run, _ = await run_queries(
                    http, gateway, other, beir_ids, mode if support["declared"] else None, kept
                )
                by_split[split][mode] = beir.evaluate(other.qrels, run)
                if hits is not None:
                    hits.setdefault(split, {})[mode] = kept
                print(f"{split} {mode}: {by_split[split][mode]}", flush=True)

    completed = [d for d in seen if d["status"] == "completed"]
    return {
        "search_mode_parameter": support,
        "modes": by_mode,
        **({"other_splits": by_split} if by_split else {}),
        "ingestion": {
            "documents": len(beir_ids),
            "completed": len(completed),
            "failed": sum(d["status"] == "failed" for d in seen),
            "chunks": sum(d["chunks_total"] or 0 for d in seen),
            "uploads_s": round(uploads_s, 1),
            "seconds": round(ingest_s, 1),
            "documents_per_min": round(len(beir_ids) / ingest_s * 60, 1),
            "upload_clients": clients,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=beir.DEFAULT, choices=sorted(beir.KNOWN))
    parser.add_argument(
        "--collection", type=Path, help="a BEIR collection's folder (default: make beir's)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="of dense, keyword, hybrid")
    parser.add_argument("--queries", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument("--documents", type=int, default=0, help="at most N (0: all)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploading clients")
    parser.add_argument(
        "--also-split",
        action="append",
        default=[],
        help="score this split's queries too (e.g. train, for tuning; repeatable)",
    )
    parser.add_argument(
        "--hits-out", type=Path, help="write the --also-split queries' chunks per mode here"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="DOCFLOW_X=VALUE",
        help="a setting for the services (e.g. DOCFLOW_CHUNK_TOKENS=256; repeatable)",
    )
    args = parser.parse_args()
    settings = dict(s.split("=", 1) for s in args.setting)

    where = args.collection or beir.folder(args.name)
    name = args.name if args.collection is None else where.name
    published = PUBLISHED.get(name, {})
    if not (where / "corpus.jsonl").is_file():
        write_report(
            "retrieval_quality",
            {
                "collection": name,
                "measured": False,
                "why": f"no collection in {shown(where)}: {beir.how_to_install(name)}",
                "published": published,
            },
        )
        return
    began = time.monotonic()
    collection = chosen(beir.read(where), args.queries, args.documents)
    modes = [m for m in args.modes.split(",") if m]
    others = {split: beir.read(where, split) for split in args.also_split}
    hits: dict[str, Any] = {}
    with running_system({"DOCFLOW_RATE_LIMIT": "100000/second", **settings}) as stack:
        measured = asyncio.run(measure(stack, collection, modes, args.clients, others, hits))
    if args.hits_out:
        args.hits_out.write_text(json.dumps(hits))
    write_report(
        "retrieval_quality",
        {
            "collection": name,
            "collection_verified": beir.verified_md5(where),
            "measured": True,
            "split": "test",
            "documents": len(collection.documents),
            "queries": len(collection.queries),
            "subset": bool(args.queries or args.documents),
            "settings": settings,
            "chunks_per_query": CHUNKS_PER_QUERY,
            "document_score": "best chunk (max score over the document's chunks)",
            "metrics": "trec_eval via ir-measures: nDCG@10, recall@10 over documents",
            **measured,
            "published": published,
            **({"reference": REFERENCES[name]} if name in REFERENCES else {}),
            "wall_clock_s": round(time.monotonic() - began),
        },
    )


if __name__ == "__main__":
    main()
