"""Creating docflow's topics where no operator does it (local broker, tests),
and the reads that are not a service's consumer group: partitions, a whole
topic (dead letters), consumer lag.

Production declares the topics as Strimzi ``KafkaTopic`` resources instead.
Every function takes the connection's ``security`` (``kafka_security.py``;
None is plaintext).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from docflow_shared.kafka_errors import explained
from docflow_shared.kafka_security import KafkaSecurity, client_kwargs
from docflow_shared.settings import KafkaClientSettings
from docflow_shared.topics import CONSUMERS, TopicSpec, specs

logger = logging.getLogger(__name__)

# Kafka's error code for "topic already exists": creating is idempotent.
_TOPIC_ALREADY_EXISTS = 36


async def wait_for_kafka(
    bootstrap_servers: str, timeout_s: float = 60.0, *, security: KafkaSecurity | None = None
) -> None:
    """Return once the cluster answers a metadata request; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=5000, **client_kwargs(security)
        )
        try:
            async with explained(bootstrap_servers, security):
                await admin.start()
            cluster = await admin.describe_cluster()
            if cluster.get("brokers"):
                return
        except (KafkaError, OSError) as exc:
            last_error = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.25)
    raise TimeoutError(f"Kafka at {bootstrap_servers} did not answer in {timeout_s}s: {last_error}")


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    timeout_s: float = 60.0,
    *,
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create the topics that do not exist yet and wait until each has a leader.

    Returns the names of the topics it created.
    """
    specs = list(specs)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000, **client_kwargs(security)
    )
    async with explained(bootstrap_servers, security):
        await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
                    for s in missing
                ]
            )
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    message = rest[0] if rest else ""
                    raise RuntimeError(f"could not create topic {name}: error {code} {message}")
        # Topics made by an older version get today's configuration (the
        # whole topic-level set: AlterConfigs replaces it).
        kept = [
            ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.config)
            for spec in specs
            if spec.name in existing and spec.config
        ]
        if kept:
            for response in await admin.alter_configs(kept):
                for code, message, _, name in response.resources:
                    if code != 0:
                        raise RuntimeError(
                            f"could not configure topic {name}: error {code} {message}"
                        )
        deadline = time.monotonic() + timeout_s
        names = [spec.name for spec in specs]
        while True:
            described = await admin.describe_topics(names)
            if all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics have no leader after {timeout_s}s: {names}")
            await asyncio.sleep(0.2)
        created = [spec.name for spec in missing]
        if created:
            logger.info("created topics %s", ", ".join(created))
        return created
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m docflow_shared.kafka_admin``: create docflow's topics (e.g. in Compose),
    connecting as the ``DOCFLOW_KAFKA_*`` security settings say."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    security = KafkaClientSettings().kafka_security

    async def run() -> None:
        await wait_for_kafka(args.bootstrap_servers, timeout_s=120, security=security)
        await ensure_topics(
            args.bootstrap_servers,
            specs(args.partitions, args.replication_factor),
            security=security,
        )

    asyncio.run(run())


if __name__ == "__main__":
    main()


async def partitions_of(
    bootstrap: str, topics: Sequence[str], *, security: KafkaSecurity | None = None
) -> list[TopicPartition]:
    """Every partition of ``topics``, in topic and partition order."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs(security))
    async with explained(bootstrap, security):
        await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    by_name = {d["topic"]: d for d in described}
    return [
        TopicPartition(topic, p["partition"])
        for topic in topics
        for p in sorted(by_name[topic]["partitions"], key=lambda p: p["partition"])
    ]


class PartitionCounts:
    """Topics' partition counts, asked of Kafka once per ``ttl_s`` (``messaging.
    PartitionCounts``); None while Kafka does not answer within ``timeout_s`` (asked
    again after ``retry_s``), so the publisher falls back to the key's hash."""

    def __init__(
        self,
        bootstrap: str,
        *,
        security: KafkaSecurity | None = None,
        ttl_s: float = 300.0,
        retry_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._bootstrap, self._security = bootstrap, security
        self._ttl_s, self._retry_s, self._timeout_s = ttl_s, retry_s, timeout_s
        self._known: dict[str, tuple[int | None, float]] = {}

    async def __call__(self, topic: str) -> int | None:
        count, until = self._known.get(topic, (None, 0.0))
        if time.monotonic() < until:
            return count
        try:
            found = await asyncio.wait_for(
                partitions_of(self._bootstrap, [topic], security=self._security), self._timeout_s
            )
            count, until = len(found) or None, time.monotonic() + self._ttl_s
        except Exception as exc:  # Kafka away: the key's hash until it answers
            logger.warning("could not read %s's partition count: %s", topic, exc)
            count, until = None, time.monotonic() + self._retry_s
        self._known[topic] = (count, until)
        return count


async def read_topic(
    bootstrap: str, topic: str, *, security: KafkaSecurity | None = None
) -> list[bytes]:
    """Every message value on ``topic`` from offset 0 to its current end (tests, benchmarks)."""
    records = await read_records(bootstrap, topic, security=security)
    return [record.value for record in records if record.value]


async def read_records(
    bootstrap: str, topic: str, *, security: KafkaSecurity | None = None
) -> list[Any]:
    """Every record (aiokafka ``ConsumerRecord``) on ``topic`` from offset 0 to its
    current end, without a consumer group."""
    partitions = await partitions_of(bootstrap, [topic], security=security)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_kwargs(security)
    )
    async with explained(bootstrap, security):
        await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                records += batch.get(tp, [])
        return records
    finally:
        await consumer.stop()


async def consumer_lag(
    bootstrap: str, group: str, topics: Sequence[str], *, security: KafkaSecurity | None = None
) -> int:
    """Messages on ``topics`` that consumer group ``group`` has not committed yet."""
    positions = await group_positions(bootstrap, dict.fromkeys(topics, group), security=security)
    return sum(end - committed for committed, end in positions.values())


async def consumers_lag(bootstrap: str, *, security: KafkaSecurity | None = None) -> dict[str, int]:
    """The lag of each service's main consumer group (``topics.CONSUMERS``)."""
    return {
        group: await consumer_lag(bootstrap, group, read, security=security)
        for group, read in CONSUMERS.items()
    }


async def group_positions(
    bootstrap: str,
    inputs: Mapping[str, str],
    *,
    security: KafkaSecurity | None = None,
) -> dict[TopicPartition, tuple[int, int]]:
    """For each topic of ``inputs`` (topic -> the consumer group reading it), every
    partition's (committed offset of the group, end offset); 0 where the group has
    committed nothing. One admin client and one consumer for all."""
    partitions = await partitions_of(bootstrap, list(inputs), security=security)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs(security))
    async with explained(bootstrap, security):
        await admin.start()
    committed: dict[TopicPartition, int] = {}
    try:
        for group in set(inputs.values()):
            mine = [tp for tp in partitions if inputs[tp.topic] == group]
            for tp, meta in (
                await admin.list_consumer_group_offsets(group, partitions=mine)
            ).items():
                if meta is not None and meta.offset >= 0:
                    committed[tp] = meta.offset
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_kwargs(security)
    )
    async with explained(bootstrap, security):
        await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp: (committed.get(tp, 0), ends[tp]) for tp in partitions}
