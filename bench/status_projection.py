"""The status service: how fast it projects events, how fast it answers while
documents flow, and how soon a document is readable after its upload.

1. Projection: the read model applies the events of 300 documents (14 each,
   documents interleaved as they are on Kafka) in batches of up to 500, one
   transaction each, as the consumer does; and, for comparison, one
   transaction per event. On a SQLite file and on PostgreSQL (Debian's
   server, durable settings). Events/s, two rounds each, alternating; goal on
   SQLite ≥ 2,000 events/s.
2. Reads under load: the status service as its own process on a real Kafka
   broker (SQLite, the default) while 20 documents a second flow in. 50
   readers GET a document, ten times a second each: at independent moments,
   as separate clients' progress bars do (bench/clients.py; goal on SQLite
   p99 ≤ 10 ms); then all 50 at the same moments (hey -q, bursts of 50); then
   as fast as answers come (hey, what one process can serve). p50/p99. Once
   with the service as one process (the default), once split into its API
   and its projector (DOCFLOW_STATUS_ROLE=api / projector) on one SQLite file.
3. Readable after upload: for every fourth document of the flow, the time
   from Kafka acknowledging the upload event (when the gateway answers 202)
   to the first 200 from GET /v1/documents/{id}.

Writes bench/results/status_projection.json.

    .venv/bin/python bench/status_projection.py
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from aiokafka import AIOKafkaProducer
from harness import ROOT, cpu_seconds, write_report

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.postgres import LocalPostgres
from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack
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
from docflow_shared.sql import create_engine
from docflow_shared.topics import specs
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import evolve
from docflow_status.entrypoints.consumer import MAX_BATCH

TENANT = "default"
READERS = 50
# Each reader polls its document as a progress bar would, ten times a second
# (500 requests/s from the 50), while 20 documents a second flow in (280 events/s).
POLL_QPS = 10
FLOW_DOCUMENTS_PER_S = 20


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


async def projection_rate(url: str, events: list[Event], batch: int) -> float:
    """Events/s applying ``events`` in batches of ``batch`` (1: a transaction per event)."""
    model = SqlReadModel(create_engine(url))
    try:
        await model.migrate()
        started = time.perf_counter()
        for first in range(0, len(events), batch):
            await model.apply_all(events[first : first + batch], evolve)
        return len(events) / (time.perf_counter() - started)
    finally:
        await model.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hey_binary() -> str:
    built = ROOT / ".cache" / "go" / "bin" / "hey"
    found = str(built) if built.is_file() else shutil.which("hey")
    if found is None:
        raise SystemExit("hey is needed: `make hey` builds it into .cache/go/bin")
    return found


async def hey(url: str, *, seconds: int, per_reader_qps: int | None) -> dict[str, Any]:
    """READERS clients GET ``url`` for ``seconds`` (hey, a Go load generator, so the
    client's own overhead stays out of the figures); each at ``per_reader_qps`` or,
    with None, as fast as answers come."""
    args = [hey_binary(), "-c", str(READERS), "-z", f"{seconds}s", "-o", "csv"]
    if per_reader_qps is not None:
        args += ["-q", str(per_reader_qps)]
    process = await asyncio.create_subprocess_exec(
        *args, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await process.communicate()
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    ok = [float(r["response-time"]) for r in rows if r["status-code"] == "200"]
    return {
        "readers": READERS,
        "per_reader_qps": per_reader_qps,
        "requests": len(rows),
        "not_200": len(rows) - len(ok),
        "requests_per_s": round(len(rows) / seconds, 1),
        "p50_ms": round(1000 * statistics.median(ok), 2),
        "p99_ms": round(1000 * percentile(ok, 0.99), 2),
    }


async def independent_readers(url: str, *, seconds: int) -> dict[str, Any]:
    """READERS clients each polling ``url`` POLL_QPS times a second, at independent
    moments (bench/clients.py, its own process)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "clients.py"),
        url,
        "--clients",
        str(READERS),
        "--qps",
        str(POLL_QPS),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def under_load(bootstrap: str, status_url: str, pids: dict[str, int]) -> dict[str, Any]:
    """Readers GET a document while the events of FLOW_DOCUMENTS_PER_S documents a
    second flow in; and how soon after its upload event each new document is readable."""
    # The flow is sent with aiokafka itself, events encoded once, so that the
    # benchmark's own CPU use stays small next to what it measures.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    phase = "warm-up"
    readable: dict[str, list[float]] = {}
    flowing = True
    published = 0

    async def send(events: list[Event]) -> None:
        sent = [
            await producer.send(
                e.TOPIC, e.model_dump_json().encode(), key=str(e.document_id).encode()
            )
            for e in events
        ]
        await asyncio.gather(*sent)

    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def readable_at(url: str, every_s: float) -> float:
                while True:
                    if (await http.get(url)).status_code == 200:
                        return time.perf_counter()
                    await asyncio.sleep(every_s)

            async def first_readable(document_id: UUID, acked: float, during: str) -> None:
                url = f"{status_url}/v1/documents/{document_id}"
                delay = await readable_at(url, 0.005) - acked
                readable.setdefault(during, []).append(delay)

            watchers: list[asyncio.Task[None]] = []

            async def flow() -> None:
                nonlocal published
                started = time.perf_counter()
                while flowing:
                    events = history(uuid4(), datetime.now(UTC))
                    # The upload event first and on its own, as the gateway sends it.
                    await send(events[:1])
                    if published % 4 == 0:
                        watchers.append(
                            asyncio.create_task(
                                first_readable(events[0].document_id, time.perf_counter(), phase)
                            )
                        )
                    await send(events[1:])
                    published += 1
                    # Paced: the n-th document no sooner than n / rate seconds in.
                    await asyncio.sleep(
                        max(0.0, started + published / FLOW_DOCUMENTS_PER_S - time.perf_counter())
                    )

            first = history(uuid4(), datetime.now(UTC))
            await send(first)
            url = f"{status_url}/v1/documents/{first[0].document_id}"
            await readable_at(url, 0.05)
            flowing_task = asyncio.create_task(flow())
            await asyncio.sleep(2)
            phase = "independent"
            used = {name: cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            polling = await independent_readers(url, seconds=15)
            polling["cpu_cores_used"] = {
                name: round((cpu_seconds(pid) - used[name]) / (time.perf_counter() - started), 2)
                for name, pid in pids.items()
            }
            phase = "synchronized"
            bursts = await hey(url, seconds=10, per_reader_qps=POLL_QPS)
            phase = "saturating"
            saturated = await hey(url, seconds=10, per_reader_qps=None)
            flowing = False
            await flowing_task
            await asyncio.gather(*watchers)
    finally:
        await producer.stop()
    return {
        "flow_documents_per_s": FLOW_DOCUMENTS_PER_S,
        "flow_events_per_s": FLOW_DOCUMENTS_PER_S * len(first),
        "documents_published": published,
        "independent_readers": polling,
        "synchronized_readers": bursts,
        "saturating_readers": saturated,
        "readable_after_ack_ms": {
            during: {
                "p50": round(1000 * statistics.median(delays), 1),
                "p99": round(1000 * percentile(delays, 0.99), 1),
                "samples": len(delays),
            }
            for during, delays in readable.items()
        },
    }


def status_under_load(kafka: LocalKafka, home: Path, *, split: bool) -> dict[str, Any]:
    """``under_load`` on the status service as one process, or as its API and its
    projector in two (DOCFLOW_STATUS_ROLE)."""
    api = Service("status", "docflow_status", free_port(), (("DOCFLOW_STATUS_ROLE", "api"),))
    projector = Service(
        "status-projector",
        "docflow_status",
        free_port(),
        (("DOCFLOW_STATUS_ROLE", "projector"),),
    )
    one = Service("status", "docflow_status", free_port())
    stack = Stack(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        data_dir=home / "data",
        services=[api, projector] if split else [one],
        log_dir=home / "logs",
        extra_env={"DOCFLOW_LOG_LEVEL": "WARNING"},
    )
    stack.start()
    try:
        pids = {
            name: stack.pid(name)
            for name in (["status", "status-projector"] if split else ["status"])
        }
        pids |= {
            "kafka": kafka.pid,
            # This process and everything it started: the whole machine's load.
            "all": os.getpid(),
        }
        return asyncio.run(under_load(kafka.bootstrap_servers, stack.url("status"), pids))
    finally:
        stack.stop()


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    hey_binary()
    events = interleaved(300)
    # Batches as the consumer polls them, and (on the first 1,000 events) one
    # transaction per event, which is what the consumer did before.
    ways = {"batched": (events, MAX_BATCH), "one_per_event": (events[:1000], 1)}
    rates: dict[str, dict[str, list[float]]] = {
        db: {way: [] for way in ways} for db in ("sqlite", "postgresql")
    }
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        with LocalPostgres(home=home / "postgres", port=free_port(), durable=True) as postgres:
            for round_ in range(2):
                for way, (applied, batch) in ways.items():
                    name = f"{way}_{round_}"
                    sqlite = f"sqlite+aiosqlite:///{home}/status-{name}.db"
                    rates["sqlite"][way].append(
                        asyncio.run(projection_rate(sqlite, applied, batch))
                    )
                    url = asyncio.run(postgres.create_database(f"bench_{name}"))
                    rates["postgresql"][way].append(
                        asyncio.run(projection_rate(url, applied, batch))
                    )
        with LocalKafka(
            home=home / "kafka", port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            asyncio.run(ensure_topics(kafka.bootstrap_servers, specs()))
            load = {
                layout: status_under_load(kafka, home / layout, split=layout == "split")
                for layout in ("one_process", "split")
            }
    write_report(
        "status_projection",
        {
            "events": len(events),
            "batch": MAX_BATCH,
            "projection_events_per_s": {
                db: {way: round(statistics.median(v), 1) for way, v in by_way.items()}
                for db, by_way in rates.items()
            },
            "goal_sqlite_events_per_s": 2000,
            # one_process: the default (make run); split: DOCFLOW_STATUS_ROLE=api
            # and =projector as two processes on one SQLite file.
            "under_load_sqlite": load,
            "goal_sqlite_get_p99_ms": 10,
            "all": rates,
        },
    )


if __name__ == "__main__":
    main()
