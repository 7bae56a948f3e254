"""The embedder service against its floor, and what batching across documents buys.

1. Throughput: the chunks of GeoTopo-komprimiert.pdf (as the extractor cuts
   them) through the embedder as its own process on a real Kafka broker,
   from publishing the chunk batches to seeing ``DocumentIndexed``, against
   the same model called in this process on the same texts with the same
   batch size (no Kafka, no Qdrant). Chunks/s; goal ratio ≥ 0.9. Also the
   same with Qdrant writes in this process (the handler without Kafka).
2. Batching across documents: 128 one-chunk documents published at once,
   through the service allowed one chunk batch per model call
   (``DOCFLOW_MAX_BATCHES_PER_CALL=1``) and the default 16; and, in this
   process, the model called once per chunk against once per 16.
3. Re-embedding: the same chunks, stored in a collection, re-embedded into
   a new one by the reindexer's own steps (read a page, look up what the new
   collection has, embed, write, check again), against the model alone. The
   "new model" is the same MiniLM under another name, so both sides compute
   the same; the ratio is the cost of the reindex machinery.

Runs alternate, ``--rounds`` times; medians. Writes bench/results/embedder.json.

    .venv/bin/python bench/embedder.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from harness import CORPUS, stored_pdf, write_report

from docflow_embedder.adapters.embedded import open_embedded
from docflow_embedder.adapters.engine import EngineEmbedder
from docflow_embedder.adapters.qdrant import QdrantIndex, QdrantVectorStore, collection_name
from docflow_embedder.domain import Embedder
from docflow_embedder.entrypoints.consumer import MAX_BATCHES_PER_CALL
from docflow_embedder.handlers import embed_batches
from docflow_embedder.reindex import Reindexer
from docflow_embedder.settings import EmbedderSettings
from docflow_extractor.bootstrap import reading_for
from docflow_extractor.handlers import extract_document
from docflow_extractor.settings import ExtractorSettings
from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared import topics
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import (
    Chunk,
    EmbeddingSpec,
    Envelope,
    Event,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexRequested,
    TextExtracted,
    parse_event,
)
from docflow_shared.kafka_admin import ensure_topics, partitions_of
from docflow_shared.topics import specs

DOCUMENT = CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"
SMALL_DOCUMENTS = 128


async def _ignore(event: Event) -> None:
    pass


def corpus_batches(home: Path) -> list[TextExtracted]:
    """GeoTopo's chunk batches, as the extractor publishes them."""
    blobs = LocalBlobStore(home / "blobs")
    batches: list[TextExtracted] = []

    async def keep(event: Event) -> None:
        if isinstance(event, TextExtracted):
            batches.append(event)

    upload = stored_pdf(blobs, DOCUMENT, 1)
    reading = reading_for(ExtractorSettings(data_dir=home))
    asyncio.run(extract_document(upload, blobs=blobs, publish=keep, reading=reading))
    return batches


def renamed(batches: Sequence[TextExtracted]) -> list[TextExtracted]:
    """The same batches as a new document (new point ids, a new DocumentIndexed)."""
    document_id = uuid.uuid4()
    return [b.model_copy(update={"document_id": document_id}) for b in batches]


def small_documents(texts: Sequence[str]) -> list[TextExtracted]:
    """One document per text, one chunk each."""
    return [
        TextExtracted(
            document_id=uuid.uuid4(),
            tenant_id="bench",
            correlation_id="bench",
            batch=0,
            chunks=[Chunk(index=0, text=text, char_start=0, char_end=len(text))],
            last=True,
            chunks_total=1,
        )
        for text in texts
    ]


async def through_the_service(bootstrap: str, events: Sequence[TextExtracted]) -> float:
    """Seconds from publishing ``events`` to a DocumentIndexed for each of their documents."""
    waiting = {e.document_id for e in events}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        indexed = await partitions_of(bootstrap, [topics.INDEXED])
        consumer.assign(indexed)
        await consumer.seek_to_end(*indexed)
        for tp in indexed:
            await consumer.position(tp)  # settle the position before anything is sent
        started = time.perf_counter()
        sent = [
            await producer.send(
                e.TOPIC, e.model_dump_json().encode(), key=str(e.document_id).encode()
            )
            for e in events
        ]
        await asyncio.gather(*sent)
        while waiting:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    waiting.discard(parse_event(record.value or b"").document_id)
        return time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()


class Renamed:
    """The same model under another name: a "new model" that computes the same."""

    def __init__(self, model: EngineEmbedder, name: str) -> None:
        self._model = model
        self.model = name
        self.dimension = model.dimension

    def embed(self, texts: Sequence[str]) -> Any:
        return self._model.embed(texts)


class BenchModels:
    def __init__(self, model: EngineEmbedder) -> None:
        self._model = model

    def get(self, spec: EmbeddingSpec) -> Embedder:
        if spec.model == self._model.model:
            return self._model
        return Renamed(self._model, spec.model)


async def reindex_once(index: QdrantIndex, models: BenchModels, name: str) -> float:
    """Seconds to re-embed the active collection into ``name``'s, step by step in this
    process (the steps the service takes from Kafka, without Kafka)."""
    steps: list[ReindexAdvanced] = []
    finished: list[Envelope] = []

    async def publish(event: Envelope) -> None:
        (steps if isinstance(event, ReindexAdvanced) else finished).append(event)

    reindexer = Reindexer(index, models, publish)
    started = time.perf_counter()
    await reindexer.start(
        ReindexRequested(
            reindex_id=uuid.uuid4(),
            tenant_id="bench",
            correlation_id="bench",
            embedding=EmbeddingSpec(backend="local", model=name),
        )
    )
    while steps:
        await reindexer.advance(steps.pop(0))
    seconds = time.perf_counter() - started
    if not finished or not isinstance(finished[-1], ReindexCompleted):
        raise RuntimeError(f"the reindex did not complete: {finished}")
    return seconds


def embedder_stack(home: Path, bootstrap: str, max_batches: int) -> Stack:
    embedder = services(free_port(), free_port(), free_port(), free_port())[3]
    return Stack(
        kafka_bootstrap_servers=bootstrap,
        data_dir=home,
        services=[embedder],
        log_dir=home / "logs",
        extra_env={
            "DOCFLOW_LOG_LEVEL": "WARNING",
            "DOCFLOW_MAX_BATCHES_PER_CALL": str(max_batches),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batch_size = EmbedderSettings().model_batch_size
    model = EngineEmbedder(batch_size=batch_size)
    times: dict[str, list[float]] = {
        "service": [],
        "model_alone": [],
        "handler_alone": [],
        "service_one_batch_per_call": [],
        "service_batched": [],
        "model_one_call_per_chunk": [],
        "model_batched": [],
        "reindex": [],
        "model_alone_beside_reindex": [],
    }
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        batches = corpus_batches(home / "extract")
        texts = [c.text for b in batches for c in b.chunks]
        small = [t[:200] for t in texts[:SMALL_DOCUMENTS]]
        model.embed(texts[:32])  # warm-up
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            bootstrap = kafka.bootstrap_servers
            asyncio.run(ensure_topics(bootstrap, specs()))
            # Each round starts both embedders afresh, in turns, on empty Qdrant
            # collections: a collection that grew over earlier rounds would make
            # later rounds slower, and the two settings unequal.
            for n in range(args.rounds):
                for max_batches in (MAX_BATCHES_PER_CALL, 1):
                    home_n = home / f"service-{max_batches}-{n}"
                    stack = embedder_stack(home_n, bootstrap, max_batches)
                    stack.start()
                    try:
                        asyncio.run(through_the_service(bootstrap, small_documents(small[:16])))
                        if max_batches == MAX_BATCHES_PER_CALL:
                            times["service"].append(
                                asyncio.run(through_the_service(bootstrap, renamed(batches)))
                            )
                        key = (
                            "service_batched"
                            if max_batches == MAX_BATCHES_PER_CALL
                            else "service_one_batch_per_call"
                        )
                        times[key].append(
                            asyncio.run(through_the_service(bootstrap, small_documents(small)))
                        )
                    finally:
                        stack.stop()
                    if max_batches == MAX_BATCHES_PER_CALL:
                        started = time.perf_counter()
                        model.embed(texts)
                        times["model_alone"].append(time.perf_counter() - started)
                        vectors = QdrantVectorStore(
                            open_embedded(home_n / "alone-qdrant"),
                            collection_name(model.model, model.dimension),
                            model.dimension,
                        )
                        started = time.perf_counter()
                        asyncio.run(
                            embed_batches(
                                renamed(batches), embedder=model, vectors=vectors, publish=_ignore
                            )
                        )
                        times["handler_alone"].append(time.perf_counter() - started)
                        vectors.client.close()
                    started = time.perf_counter()
                    for text in small:
                        model.embed([text])
                    times["model_one_call_per_chunk"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    model.embed(small)
                    times["model_batched"].append(time.perf_counter() - started)

        models = BenchModels(model)
        index = QdrantIndex(open_embedded(home / "reindex-qdrant"), models, index_payload=True)
        active = index.start(EmbeddingSpec(backend="local", model=model.model))
        asyncio.run(
            embed_batches(renamed(batches), embedder=model, vectors=active.vectors, publish=_ignore)
        )
        for n in range(args.rounds):
            times["reindex"].append(asyncio.run(reindex_once(index, models, f"bench/copy-{n}")))
            started = time.perf_counter()
            model.embed(texts)
            times["model_alone_beside_reindex"].append(time.perf_counter() - started)
        index.client.close()

    median = {k: statistics.median(v) for k, v in times.items()}
    chunks = len(texts)
    report: dict[str, Any] = {
        "document": DOCUMENT.name,
        "chunks": chunks,
        "model_batch_size": batch_size,
        "chunks_per_s": {
            "service": round(chunks / median["service"], 1),
            "model_alone": round(chunks / median["model_alone"], 1),
            "handler_alone_with_qdrant": round(chunks / median["handler_alone"], 1),
        },
        "ratio_service_to_model_alone": round(median["model_alone"] / median["service"], 3),
        "goal_ratio": 0.9,
        "small_documents": SMALL_DOCUMENTS,
        "small_documents_s": {
            "service_one_batch_per_call": round(median["service_one_batch_per_call"], 2),
            f"service_up_to_{MAX_BATCHES_PER_CALL}_per_call": round(median["service_batched"], 2),
            "model_one_call_per_chunk": round(median["model_one_call_per_chunk"], 2),
            f"model_batches_of_{batch_size}": round(median["model_batched"], 2),
        },
        "batching_speedup": {
            "service": round(median["service_one_batch_per_call"] / median["service_batched"], 2),
            "model": round(median["model_one_call_per_chunk"] / median["model_batched"], 2),
        },
        "reindex_chunks_per_s": {
            "reindex": round(chunks / median["reindex"], 1),
            "model_alone": round(chunks / median["model_alone_beside_reindex"], 1),
        },
        "ratio_reindex_to_model_alone": round(
            median["model_alone_beside_reindex"] / median["reindex"], 3
        ),
        "rounds": args.rounds,
        "all": times,
    }
    write_report("embedder", report)


if __name__ == "__main__":
    main()
