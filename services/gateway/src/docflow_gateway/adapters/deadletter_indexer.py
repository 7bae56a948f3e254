"""The gateway's dead-letter indexer: follows ``docflow.deadletter.v1`` and writes
each new message once into the index (``deadletter_index.py``), so no request
ever reads the topic.

It runs in every gateway process, next to the HTTP app (``bootstrap``). It
uses no consumer group: the partitions are assigned to it and it starts from
the positions the index keeps in the database (from the beginning the first
time), so each replica follows every partition and the index is complete
whether replicas share one PostgreSQL database (a row indexed already is left
alone) or each has its own SQLite file. Dead letters are rare; following them
costs a replica little.

A request asks ``caught_up`` first: it waits, at most
``DOCFLOW_DEADLETTER_INDEX_WAIT_S``, until the index has reached the topic's
end offsets as of the request (one ListOffsets request, not a read), so a
message dead-lettered before the request is in its answer. Kafka unreachable:
the answer is the index as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from docflow_gateway.adapters.deadletter_index import DeadLetterIndex, entry_of
from docflow_shared import topics
from docflow_shared.kafka_admin import partitions_of
from docflow_shared.kafka_security import KafkaSecurity, client_kwargs
from docflow_shared.logthrottle import throttled

logger = logging.getLogger(__name__)
quiet = throttled(logger)

BATCH = 500


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.indexed = Counter(
            "docflow_dead_letters_indexed",
            "Dead-letter records this gateway process read and indexed (named: the body's "
            "envelope names a tenant and document; unnamed: it does not, never listed)",
            ["body"],
            registry=registry,
        )
        self.lag = Gauge(
            "docflow_dead_letter_index_lag_messages",
            "Dead letters on the topic this process has not indexed yet (at the last request)",
            registry=registry,
        )
        for body in ("named", "unnamed"):
            self.indexed.labels(body)


class DeadLetterIndexer:
    """Follows the dead-letter topic into ``index``; ``start``/``stop`` in the lifespan."""

    def __init__(
        self,
        index: DeadLetterIndex,
        bootstrap: str,
        *,
        security: KafkaSecurity | None = None,
        registry: CollectorRegistry | None = None,
        wait_s: float = 5.0,
        retry_s: float = 2.0,
    ) -> None:
        self.index = index
        self.bootstrap = bootstrap
        self.security = security
        self.metrics = IndexerMetrics(registry or CollectorRegistry())
        self.wait_s = wait_s
        self.retry_s = retry_s
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        # The next offset this process will index, per partition.
        self._positions: dict[TopicPartition, int] = {}
        self._moved = asyncio.Condition()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="dead-letter-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _connect(self) -> AIOKafkaConsumer:
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **client_kwargs(self.security),
            )
            try:
                partitions = await partitions_of(
                    self.bootstrap, [topics.DEAD_LETTER], security=self.security
                )
                await consumer.start()
                consumer.assign(partitions)
                stored = await self.index.positions()
                for tp in partitions:
                    if tp.partition in stored:
                        consumer.seek(tp, stored[tp.partition])
                    else:
                        await consumer.seek_to_beginning(tp)
                    self._positions[tp] = stored.get(tp.partition, 0)
                self._partitions = partitions
                return consumer
            except Exception as exc:
                await consumer.stop()
                quiet.warning("dead-letter indexer cannot start yet (%s); trying again", exc)
                await asyncio.sleep(self.retry_s)
            except BaseException:  # cancelled while starting: the lifespan ends
                await consumer.stop()
                raise

    async def _follow(self) -> None:
        self._consumer = consumer = await self._connect()
        self._ready.set()
        logger.info("indexing %s from %s", topics.DEAD_LETTER, self._positions)
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            if not batch:
                await self._caught_up_with(consumer)
                continue
            try:
                await self._index(batch)
            except Exception as exc:
                # The database refused or is away: read the batch again later.
                quiet.warning("dead-letter indexer could not write the index (%s)", exc)
                for tp, offset in self._positions.items():
                    consumer.seek(tp, offset)
                await asyncio.sleep(self.retry_s)

    async def _index(self, batch: dict[TopicPartition, list[Any]]) -> None:
        entries, positions = [], {}
        for tp, records in batch.items():
            for record in records:
                entries.append(
                    entry_of(
                        tp.partition, record.offset, record.timestamp, record.value, record.headers
                    )
                )
            if records:
                positions[tp] = records[-1].offset + 1
        # Oldest first across the partitions of a batch, as the API lists them.
        entries.sort(key=lambda e: (e.dead_lettered_at, e.partition, e.offset))
        await self.index.add(entries, {tp.partition: at for tp, at in positions.items()})
        named = sum(1 for entry in entries if entry.tenant_id is not None)
        self.metrics.indexed.labels("named").inc(named)
        self.metrics.indexed.labels("unnamed").inc(len(entries) - named)
        if len(entries) > named:
            quiet.warning("indexed %d dead letters that name no document", len(entries) - named)
        async with self._moved:
            self._positions.update(positions)
            self._moved.notify_all()

    async def _caught_up_with(self, consumer: AIOKafkaConsumer) -> None:
        # Nothing was left to read: where the consumer is, everything before is
        # indexed or was deleted from the topic (retention, DeleteRecords; the
        # consumer then starts at the earliest offset kept), so a request does
        # not wait for records that are gone.
        at = {tp: await consumer.position(tp) for tp in self._partitions}
        async with self._moved:
            for tp, offset in at.items():
                self._positions[tp] = max(self._positions.get(tp, 0), offset)
            self._moved.notify_all()

    def _behind(self, ends: dict[TopicPartition, int]) -> int:
        return sum(max(end - self._positions.get(tp, 0), 0) for tp, end in ends.items())

    async def caught_up(self) -> None:
        """Wait (at most ``wait_s``) until every dead letter on the topic now is indexed."""
        ends: dict[TopicPartition, int] = {}
        try:
            async with asyncio.timeout(self.wait_s):
                await self._ready.wait()
                assert self._consumer is not None
                ends = await self._consumer.end_offsets(self._partitions)
                async with self._moved:
                    await self._moved.wait_for(lambda: self._behind(ends) == 0)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            quiet.warning("dead-letter index may be behind the topic (%s)", reason)
        self.metrics.lag.set(self._behind(ends))
