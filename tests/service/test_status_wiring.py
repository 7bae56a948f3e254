"""The status projector's subscriber on every topic, into a real SQLite read model."""

from __future__ import annotations

import uuid

from faststream.kafka import TestKafkaBroker

from docflow_shared import topics
from docflow_shared.messaging import make_broker
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.domain.projection import Status
from docflow_status.entrypoints.consumer import register
from support.histories import failed_while_extracting, successful
from support.waiting import await_until


async def test_every_topic_feeds_the_read_model(
    real_kafka: str | None, read_model: SqlReadModel
) -> None:
    broker = make_broker(real_kafka or "127.0.0.1:1", service="status")
    register(broker, read_model=read_model)
    done, failed = successful(uuid.uuid4()), failed_while_extracting(uuid.uuid4())
    async with TestKafkaBroker(broker, with_real=real_kafka is not None) as br:
        # A garbage message first: it is skipped, the rest is projected.
        await br.publish(b"{not an event", topic=topics.UPLOADED, key=b"k")
        for event in [*done, *failed]:
            await br.publish(event, topic=event.TOPIC, key=str(event.document_id).encode())

        async def finished() -> bool:
            # Topics are consumed independently: the terminal event may be
            # projected before the uploaded one, so wait for its facts too.
            a = await read_model.get(done[0].document_id, "t1")
            b = await read_model.get(failed[0].document_id, "t1")
            return bool(
                a
                and b
                and a.status is Status.COMPLETED
                and a.filename is not None
                and b.status is Status.FAILED
            )

        await await_until(finished, timeout_s=60, what="both documents projected")
    completed = await read_model.get(done[0].document_id, "t1")
    assert completed is not None
    assert (completed.progress, completed.chunks_total, completed.filename) == (
        100,
        12,
        "report.pdf",
    )
