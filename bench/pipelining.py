"""Does embedding a large document start before its extraction ends?

For GeoTopo-komprimiert.pdf (117 pages): the time from upload to
``completed`` through the whole running system (Kafka broker and the four
services as separate processes, as ``make run`` starts them) against the
larger of its extraction alone and its embedding alone, each measured in
this process with the services' own code and settings and no Kafka:
extraction in the sandbox with chunking, embedding with the local model in
the embedder's batch size and writes to Qdrant local mode. With perfect
pipelining the ratio is 1; the goal is at most 1.2. The three are measured
in turns, ``--rounds`` times, and medians compared. From the events on
Kafka it also reports when the first chunks were embedded and when
extraction ended, both from the upload. Writes bench/results/pipelining.json.

    .venv/bin/python bench/pipelining.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness import CORPUS, cpu_seconds, stored_pdf, write_report
from qdrant_client import QdrantClient

from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.adapters.qdrant import QdrantVectorStore, collection_name
from docflow_embedder.handlers import embed_chunks
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
    DocumentProgressed,
    Event,
    Stage,
    TextExtracted,
    parse_event,
)
from docflow_shared.kafka_admin import ensure_topics, read_topic
from docflow_shared.topics import specs

DOCUMENT = CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"
WARM_UP = CORPUS / "pdf" / "pdflatex-4-pages.pdf"


async def _ignore(event: Event) -> None:
    pass


class Alone:
    """Extraction and embedding of one document in this process, without Kafka."""

    def __init__(self, home: Path) -> None:
        self.blobs = LocalBlobStore(home / "blobs")
        self.reading = reading_for(ExtractorSettings(data_dir=home))
        settings = EmbedderSettings(data_dir=home)
        self.embedder = MiniLMEmbedder(batch_size=settings.model_batch_size)
        client = QdrantClient(path=str(home / "qdrant"))
        dimension = self.embedder.dimension
        self.vectors = QdrantVectorStore(
            client, collection_name(self.embedder.model, dimension), dimension
        )
        self.uploads = 0

    def cpu(self) -> float:
        """CPU seconds of this process and of its parser sandbox (forkserver and workers)."""
        from multiprocessing import forkserver

        sandbox = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        return time.process_time() + (cpu_seconds(sandbox) if sandbox else 0.0)

    async def extract(self, path: Path) -> tuple[float, list[TextExtracted]]:
        batches: list[TextExtracted] = []

        async def keep(event: Event) -> None:
            if isinstance(event, TextExtracted):
                batches.append(event)

        self.uploads += 1
        event = stored_pdf(self.blobs, path, self.uploads)
        started = time.perf_counter()
        await extract_document(event, blobs=self.blobs, publish=keep, reading=self.reading)
        return time.perf_counter() - started, batches

    async def embed(self, batches: list[TextExtracted]) -> float:
        started = time.perf_counter()
        for batch in batches:
            await embed_chunks(batch, embedder=self.embedder, vectors=self.vectors, publish=_ignore)
        return time.perf_counter() - started


WORKERS = ("extractor", "embedder")


def through_the_system(http: httpx.Client, stack: Stack, path: Path) -> tuple[float, str]:
    """Seconds from sending the upload to seeing ``completed``; the document id."""
    started = time.perf_counter()
    response = http.post(
        f"{stack.url('gateway')}/v1/documents",
        params={"dedup": "false"},
        files=[("file", (path.name, path.read_bytes(), "application/pdf"))],
    )
    response.raise_for_status()
    [document] = response.json()["documents"]
    while True:
        status = http.get(document["status_url"]).json()
        if status["status"] == "completed":
            return time.perf_counter() - started, document["id"]
        if status["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"{path.name} ended {status['status']}: {status}")
        time.sleep(0.5)


def timeline(bootstrap: str, document_id: str) -> dict[str, float]:
    """From the events on Kafka: when embedding started and extraction ended, after upload."""
    progress = [
        e
        for e in (parse_event(v) for v in asyncio.run(read_topic(bootstrap, topics.PROGRESSED)))
        if str(e.document_id) == document_id and isinstance(e, DocumentProgressed)
    ]
    batches = [
        e
        for e in (parse_event(v) for v in asyncio.run(read_topic(bootstrap, topics.EXTRACTED)))
        if str(e.document_id) == document_id
    ]
    uploaded = min(e.occurred_at for e in progress)
    extracted = max(e.occurred_at for e in progress if e.stage is Stage.EXTRACTING)
    embedding = min(e.occurred_at for e in progress if e.stage is Stage.EMBEDDING and e.done > 0)
    first_batch = min(e.occurred_at for e in batches)
    embedded = max(e.occurred_at for e in progress if e.stage is Stage.EMBEDDING)
    return {
        "first_batch_sent_s": round((first_batch - uploaded).total_seconds(), 2),
        "first_chunks_embedded_s": round((embedding - uploaded).total_seconds(), 2),
        "extraction_ended_s": round((extracted - uploaded).total_seconds(), 2),
        "embedding_ended_s": round((embedded - uploaded).total_seconds(), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    system: list[float] = []
    extraction: list[float] = []
    embedding: list[float] = []
    system_cpu: list[float] = []
    alone_cpu: list[float] = []
    timelines: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        alone = Alone(home / "alone")
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            stack = Stack(
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                data_dir=home / "data",
                services=services(free_port(), free_port(), free_port(), free_port()),
                log_dir=home / "logs",
                extra_env={"DOCFLOW_LOG_LEVEL": "WARNING"},
            )
            stack.start()
            try:
                with httpx.Client(timeout=60) as http:
                    through_the_system(http, stack, WARM_UP)  # model, workers, consumer groups
                    asyncio.run(alone.embed(asyncio.run(alone.extract(WARM_UP))[1]))
                    workers = [stack.pid(name) for name in WORKERS]
                    for _ in range(args.rounds):
                        cpu = cpu_seconds(*workers)
                        seconds, document_id = through_the_system(http, stack, DOCUMENT)
                        system_cpu.append(cpu_seconds(*workers) - cpu)
                        system.append(seconds)
                        timelines.append(timeline(kafka.bootstrap_servers, document_id))
                        cpu = alone.cpu()
                        seconds, batches = asyncio.run(alone.extract(DOCUMENT))
                        extraction.append(seconds)
                        embedding.append(asyncio.run(alone.embed(batches)))
                        alone_cpu.append(alone.cpu() - cpu)
            finally:
                stack.stop()

    chunks = sum(len(b.chunks) for b in batches)
    slowest_alone = max(statistics.median(extraction), statistics.median(embedding))
    report: dict[str, Any] = {
        "document": DOCUMENT.name,
        "pages": 117,
        "chunks": chunks,
        "upload_to_completed_s": round(statistics.median(system), 2),
        "extraction_alone_s": round(statistics.median(extraction), 2),
        "embedding_alone_s": round(statistics.median(embedding), 2),
        "ratio_to_slowest_stage": round(statistics.median(system) / slowest_alone, 3),
        "goal_ratio": 1.2,
        # CPU used by both stages; spread over every core, a bound no schedule beats.
        "cpus": os.cpu_count(),
        "cpu_s_extractor_and_embedder_in_system": round(statistics.median(system_cpu), 1),
        "cpu_s_extraction_and_embedding_alone": round(statistics.median(alone_cpu), 1),
        "alone_cpu_s_per_core": round(statistics.median(alone_cpu) / (os.cpu_count() or 1), 2),
        "timelines": timelines,
        "rounds": args.rounds,
        "all": {"system": system, "extraction": extraction, "embedding": embedding},
    }
    write_report("pipelining", report)


if __name__ == "__main__":
    main()
