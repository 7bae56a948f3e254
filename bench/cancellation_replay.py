"""What an extractor or embedder replica reads at start to learn every
cancellation and deletion (``docflow_shared.cancellations``): before, a topic
kept whole and keyed by document; now, a compacted topic keyed by tenant and
document (``topics.STOPS_CONFIG``).

The same history goes to both topics on the local Kafka broker: ``--documents``
documents, each cancelled ``--per-document`` times (attempt after attempt,
and repeated requests), so ``documents × per-document`` records. The
compacted topic gets the broker's cleaner at once (100 ms segments, no
minimum age) instead of production's hourly segments and one-day lag, which
only delay the same result. Then a fresh replica (``follow_cancellations`` on
a FastStream broker, as the services run it) starts on each topic; measured:
records read, and seconds from its start until it has read the topic to its
end and knows every document's latest cancelled attempt. Median of
``--rounds`` starts.

Writes bench/results/cancellation_replay.json.

    .venv/bin/python bench/cancellation_replay.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer
from harness import write_report

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_shared.cancellations import Cancellations, follow_cancellations
from docflow_shared.events import DocumentCancelled, DocumentDeleted
from docflow_shared.kafka_admin import ensure_topics, read_records
from docflow_shared.messaging import make_broker
from docflow_shared.topics import EVENTS_CONFIG, STOPS_CONFIG, TopicSpec

CLEAN_NOW = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
TENANT = "bench"


async def publish_history(
    bootstrap: str, topic: str, documents: list[UUID], per_document: int, *, compacted: bool
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        for attempt in range(1, per_document + 1):
            for document in documents:
                event = DocumentCancelled(
                    document_id=document, attempt=attempt, tenant_id=TENANT, correlation_id="bench"
                )
                key = event.kafka_key if compacted else str(document).encode()
                await producer.send(topic, event.model_dump_json().encode(), key=key)
        await producer.flush()
        await asyncio.sleep(0.3)
        # One record more rolls the segment, so the cleaner may compact the rest.
        closing = DocumentDeleted(document_id=uuid4(), tenant_id=TENANT, correlation_id="bench")
        key = closing.kafka_key if compacted else str(closing.document_id).encode()
        await producer.send_and_wait(topic, closing.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()


async def wait_for_compaction(bootstrap: str, topic: str, bound: int) -> tuple[int, float]:
    """Records left on ``topic`` once at most ``bound`` remain, and the seconds it took."""
    started = time.monotonic()
    while True:
        count = len(await read_records(bootstrap, topic))
        if count <= bound:
            return count, time.monotonic() - started
        if time.monotonic() - started > 300:
            raise TimeoutError(f"{topic} still has {count} records after 300 s")
        await asyncio.sleep(2)


async def replica_start(
    bootstrap: str, topic: str, documents: list[UUID], per_document: int, expected: int
) -> dict[str, float]:
    """A fresh replica on ``topic``: seconds until it has read ``expected`` records and
    knows every document's latest cancellation."""
    cancellations = Cancellations(capacity=len(documents) + 10)
    broker = make_broker(bootstrap, service="bench")
    follow_cancellations(broker, cancellations, names=(topic,))
    async with broker:
        started = time.monotonic()
        await broker.start()
        while not (
            cancellations.records_read >= expected
            and all(cancellations.cancelled(TENANT, d, per_document) for d in documents)
        ):
            if time.monotonic() - started > 300:
                raise TimeoutError(f"read {cancellations.records_read} of {expected}")
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - started
    return {"records_read": cancellations.records_read, "seconds": seconds}


async def run(bootstrap: str, documents: int, per_document: int, rounds: int) -> dict[str, Any]:
    ids = [uuid4() for _ in range(documents)]
    suffix = uuid4().hex[:8]
    kept, compacted = f"bench.kept.{suffix}", f"bench.compacted.{suffix}"
    await ensure_topics(
        bootstrap,
        [
            TopicSpec(kept, 1, 1, dict(EVENTS_CONFIG)),
            TopicSpec(compacted, 1, 1, {**STOPS_CONFIG, **CLEAN_NOW}),
        ],
    )
    started = time.monotonic()
    await publish_history(bootstrap, kept, ids, per_document, compacted=False)
    await publish_history(bootstrap, compacted, ids, per_document, compacted=True)
    published_s = time.monotonic() - started
    history = documents * per_document + 1
    left, compaction_s = await wait_for_compaction(bootstrap, compacted, documents + 1)
    results: dict[str, Any] = {}
    for name, topic, expected in (("kept_whole", kept, history), ("compacted", compacted, left)):
        starts = [
            await replica_start(bootstrap, topic, ids, per_document, expected)
            for _ in range(rounds)
        ]
        results[name] = {
            "records_on_topic": expected,
            "records_read": starts[-1]["records_read"],
            "start_seconds_median": round(statistics.median(s["seconds"] for s in starts), 3),
            "start_seconds": [round(s["seconds"], 3) for s in starts],
        }
    return {
        "documents": documents,
        "cancellations_per_document": per_document,
        "history_records": history,
        "published_seconds": round(published_s, 1),
        "compaction_seconds": round(compaction_s, 1),
        **results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=2_000)
    parser.add_argument("--per-document", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as home,
        LocalKafka(
            home=Path(home) / "kafka",
            port=free_port(),
            controller_port=free_port(),
            libs=ensure_jars(),
        ) as kafka,
    ):
        report = asyncio.run(
            run(kafka.bootstrap_servers, args.documents, args.per_document, args.rounds)
        )
    write_report("cancellation_replay", report)


if __name__ == "__main__":
    main()
