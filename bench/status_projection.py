"""The status service: how fast it projects events, how fast it answers while
documents flow, and how soon a document is readable after its upload.

1. Projection: the read model applies the events of 300 documents (14 each,
   documents interleaved as they are on Kafka), one transaction per event as
   the consumer does, on a SQLite file and on PostgreSQL (Debian's server,
   durable settings). Events/s, two rounds each, alternating; goal on SQLite
   ≥ 2,000 events/s.
2. Reads under load: the status service as its own process on a real Kafka
   broker (SQLite, the default) while 200 documents' events flow in; 50
   concurrent clients GET documents. p50/p99 latency; goal on SQLite p99 ≤ 10 ms.
3. Readable after upload: for 50 documents, the time from Kafka acknowledging
   the upload event (when the gateway answers 202) to the first 200 from
   GET /v1/documents/{id}.

Writes bench/results/status_projection.json.

    .venv/bin/python bench/status_projection.py
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from harness import write_report

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.postgres import LocalPostgres
from docflow_local.processes import free_port
from docflow_local.stack import Stack, services
from docflow_shared.events import (
    Chunk,
    DocumentIndexed,
    DocumentProgressed,
    DocumentUploaded,
    Event,
    Stage,
    TextExtracted,
)
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.messaging import make_broker
from docflow_shared.sql import create_engine
from docflow_shared.topics import specs
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve

TENANT = "default"
READERS = 50


def history(document_id: UUID, start: datetime, batches: int = 4) -> list[Event]:
    """Upload, extraction in batches with the embedder following, indexed: 14 events."""
    at = iter(start + timedelta(milliseconds=10 * n) for n in range(100))
    common = {"document_id": document_id, "tenant_id": TENANT, "correlation_id": "bench"}
    events: list[Event] = [
        DocumentUploaded(
            **common,
            occurred_at=next(at),
            filename="report.pdf",
            content_type="application/pdf",
            size_bytes=1000,
            sha256="0" * 64,
            blob_key=f"{TENANT}/{document_id}/original",
        ),
        DocumentProgressed(
            **common, occurred_at=next(at), stage=Stage.EXTRACTING, done=0, total=batches
        ),
    ]
    total = batches * 8
    for b in range(batches):
        last = b == batches - 1
        chunks = [
            Chunk(index=i, text=f"chunk {i}", page=b + 1, char_start=0, char_end=7)
            for i in range(b * 8, b * 8 + 8)
        ]
        events += [
            TextExtracted(
                **common,
                occurred_at=next(at),
                batch=b,
                chunks=chunks,
                last=last,
                chunks_total=total if last else None,
                pages=batches if last else None,
            ),
            DocumentProgressed(
                **common, occurred_at=next(at), stage=Stage.EXTRACTING, done=b + 1, total=batches
            ),
            DocumentProgressed(
                **common,
                occurred_at=next(at),
                stage=Stage.EMBEDDING,
                done=(b + 1) * 8,
                total=total if last else None,
            ),
        ]
    events.append(
        DocumentIndexed(
            **common, occurred_at=next(at), chunks_total=total, collection="c", embedding_model="m"
        )
    )
    return events


def interleaved(documents: int) -> list[Event]:
    """Several documents' events mixed, each document's in its own order."""
    start = datetime.now(UTC)
    queues = [history(uuid4(), start) for _ in range(documents)]
    mixed: list[Event] = []
    rng = random.Random(7)
    while queues:
        queue = rng.choice(queues)
        mixed.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return mixed


async def projection_rate(url: str, events: list[Event]) -> float:
    model = SqlReadModel(create_engine(url))
    try:
        await model.migrate()
        started = time.perf_counter()
        for event in events:
            await model.apply(event, evolve)
        return len(events) / (time.perf_counter() - started)
    finally:
        await model.engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def under_load(bootstrap: str, status_url: str) -> dict[str, Any]:
    """Readers GET documents while the events of 200 documents are published."""
    broker = make_broker(bootstrap, service="bench")
    await broker.start()
    readable: list[float] = []
    latencies: list[float] = []
    known: list[str] = []
    flowing = True
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def reader() -> None:
                while flowing:
                    if not known:
                        await asyncio.sleep(0.01)
                        continue
                    started = time.perf_counter()
                    response = await http.get(f"{status_url}/v1/documents/{random.choice(known)}")
                    if response.status_code == 200:
                        latencies.append(time.perf_counter() - started)

            async def first_readable(document_id: UUID, acked: float) -> None:
                url = f"{status_url}/v1/documents/{document_id}"
                while True:
                    if (await http.get(url)).status_code == 200:
                        break
                    await asyncio.sleep(0.002)
                readable.append(time.perf_counter() - acked)

            readers = [asyncio.create_task(reader()) for _ in range(READERS)]
            watchers = []
            for n, events in enumerate(history(uuid4(), datetime.now(UTC)) for _ in range(200)):
                for event in events:
                    await broker.publish(
                        event, topic=event.TOPIC, key=str(event.document_id).encode()
                    )
                    if isinstance(event, DocumentUploaded) and n % 4 == 0:
                        watchers.append(
                            asyncio.create_task(
                                first_readable(event.document_id, time.perf_counter())
                            )
                        )
                known.append(str(events[0].document_id))
            await asyncio.gather(*watchers)
            flowing = False
            await asyncio.gather(*readers)
    finally:
        await broker.stop()
    return {
        "readers": READERS,
        "gets": len(latencies),
        "get_p50_ms": round(1000 * statistics.median(latencies), 2),
        "get_p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "readable_after_ack_p50_ms": round(1000 * statistics.median(readable), 1),
        "readable_after_ack_p99_ms": round(1000 * percentile(readable, 0.99), 1),
        "readable_samples": len(readable),
    }


def main() -> None:
    events = interleaved(300)
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        with LocalPostgres(home=home / "postgres", port=free_port(), durable=True) as postgres:
            for round_ in range(2):
                rates["sqlite"].append(
                    asyncio.run(
                        projection_rate(f"sqlite+aiosqlite:///{home}/status-{round_}.db", events)
                    )
                )
                url = asyncio.run(postgres.create_database(f"bench_{round_}"))
                rates["postgresql"].append(asyncio.run(projection_rate(url, events)))
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            status = [s for s in services(free_port(), free_port()) if s.name == "status"]
            stack = Stack(
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                data_dir=home / "data",
                services=status,
                log_dir=home / "logs",
                extra_env={"DOCFLOW_LOG_LEVEL": "WARNING"},
            )
            stack.start()
            try:
                load = asyncio.run(under_load(kafka.bootstrap_servers, stack.url("status")))
            finally:
                stack.stop()
    write_report(
        "status_projection",
        {
            "events": len(events),
            "projection_events_per_s": {
                k: round(statistics.median(v), 1) for k, v in rates.items()
            },
            "goal_sqlite_events_per_s": 2000,
            "under_load_sqlite": load,
            "goal_sqlite_get_p99_ms": 10,
            "all": rates,
        },
    )


if __name__ == "__main__":
    main()
