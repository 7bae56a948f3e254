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
from harness import CORPUS, cpu_seconds, write_report
from inprocess import InProcess

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared import topics
from docflow_shared.events import (
    DocumentProgressed,
    Stage,
    TextExtracted,
    parse_event,
)
from docflow_shared.kafka_admin import ensure_topics, read_topic
from docflow_shared.topics import specs

DOCUMENT = CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"
WARM_UP = CORPUS / "pdf" / "pdflatex-4-pages.pdf"


def extract_alone(alone: InProcess, path: Path) -> tuple[float, list[TextExtracted]]:
    """Seconds the extractor's handler takes on ``path`` in this process; its batches."""
    event = alone.store(path)
    started = time.perf_counter()
    batches = asyncio.run(alone.extract(event))
    return time.perf_counter() - started, batches


def embed_alone(alone: InProcess, batches: list[TextExtracted]) -> float:
    """Seconds the embedder's handler takes on ``batches`` in this process."""
    started = time.perf_counter()
    asyncio.run(alone.embed(batches))
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
        alone = InProcess(home / "alone")
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
                    embed_alone(alone, extract_alone(alone, WARM_UP)[1])
                    workers = [stack.pid(name) for name in WORKERS]
                    for _ in range(args.rounds):
                        cpu = cpu_seconds(*workers)
                        seconds, document_id = through_the_system(http, stack, DOCUMENT)
                        system_cpu.append(cpu_seconds(*workers) - cpu)
                        system.append(seconds)
                        timelines.append(timeline(kafka.bootstrap_servers, document_id))
                        cpu = alone.cpu()
                        seconds, batches = extract_alone(alone, DOCUMENT)
                        extraction.append(seconds)
                        embedding.append(embed_alone(alone, batches))
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
