"""A real Kafka broker for integration and e2e tests.

In order of preference: the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``; a
container from testcontainers when a Docker engine answers; otherwise the
local broker from its Maven jars, exactly as ``make run`` starts it. Never an
in-memory stand-in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port
from docflow_local.settings import LocalSettings
from docflow_shared.kafka_admin import wait_for_kafka

logger = logging.getLogger(__name__)

# The same release as deploy/kafka/pom.xml, as the official image.
KAFKA_IMAGE = "apache/kafka:4.3.1"


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextmanager
def _container() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    with container:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(wait_for_kafka(bootstrap, timeout_s=120))
        yield bootstrap


@contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    """Bootstrap servers of a real broker for the duration of the block."""
    given = LocalSettings().kafka_bootstrap_servers
    if given:
        logger.info("tests use the Kafka at %s", given)
        asyncio.run(wait_for_kafka(given))
        yield given
    elif docker_engine_answers():
        logger.info("tests use Kafka in a container (%s)", KAFKA_IMAGE)
        with _container() as bootstrap:
            yield bootstrap
    else:
        logger.info("no Docker engine: tests use the local Kafka broker from its jars")
        with LocalKafka(
            home=workdir, port=free_port(), controller_port=free_port(), libs=ensure_jars()
        ) as kafka:
            yield kafka.bootstrap_servers
