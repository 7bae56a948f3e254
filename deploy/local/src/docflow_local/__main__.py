"""``python -m docflow_local``: the whole system on its embedded defaults (``make run``).

Starts a local Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is given),
creates the topics, starts the four services, prints where they are, and on
Ctrl-C or SIGTERM stops everything it started: services first (they finish
in-flight work and commit), then the broker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from types import FrameType

from docflow_local.kafka import KafkaStartError, LocalKafka, ensure_jars
from docflow_local.settings import LocalSettings
from docflow_local.stack import Stack, StackStartError, services
from docflow_shared.kafka_admin import ensure_topics, wait_for_kafka
from docflow_shared.logs import configure_logging
from docflow_shared.topics import specs

logger = logging.getLogger("docflow_local")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _banner(stack: Stack, kafka: str, settings: LocalSettings) -> str:
    gateway, status = stack.url("gateway"), stack.url("status")
    return f"""
docflow is running (data in {settings.data_dir.resolve()}):
  gateway    {gateway}   API docs {gateway}/docs
  status     {status}   GET /v1/documents/{{id}}
  extractor  {stack.url("extractor")}/metrics
  embedder   {stack.url("embedder")}/metrics
  ocr        {stack.url("ocr")}/metrics   (the extractor's OCR consumer)
  webhooks   {stack.url("webhooks")}/metrics   (the gateway's webhook dispatcher)
  kafka      {kafka}

Upload a document:
  curl -F file=@report.pdf {gateway}/v1/documents

Press Ctrl-C to stop.
"""


def main() -> int:
    settings = LocalSettings()
    configure_logging("docflow", settings.log_level)
    signal.signal(signal.SIGTERM, _interrupt)
    kafka: LocalKafka | None = None
    stack: Stack | None = None
    try:
        bootstrap = settings.kafka_bootstrap_servers
        security = settings.kafka_security
        if bootstrap is None:
            if security.protocol != "PLAINTEXT":
                logger.error(
                    "DOCFLOW_KAFKA_SECURITY_PROTOCOL=%s needs KAFKA_BOOTSTRAP_SERVERS: "
                    "the local broker make run starts is plaintext",
                    security.protocol,
                )
                return 2
            kafka = LocalKafka(
                home=settings.data_dir / "kafka",
                port=settings.kafka_port,
                controller_port=settings.kafka_controller_port,
                libs=ensure_jars(),
            )
            kafka.start()
            bootstrap = kafka.bootstrap_servers
        else:
            asyncio.run(wait_for_kafka(bootstrap, security=security))
        asyncio.run(ensure_topics(bootstrap, specs(settings.topic_partitions), security=security))
        stack = Stack(
            kafka_bootstrap_servers=bootstrap,
            data_dir=settings.data_dir,
            services=services(
                settings.gateway_port,
                settings.status_port,
                settings.extractor_port,
                settings.embedder_port,
                settings.ocr_port,
                settings.webhooks_port,
            ),
        )
        stack.start()
        print(_banner(stack, bootstrap, settings), flush=True)
        while not (dead := stack.dead()):
            time.sleep(1.0)  # Ctrl-C / SIGTERM interrupt this with KeyboardInterrupt
        logger.error("%s stopped unexpectedly; shutting down", ", ".join(dead))
        return 1
    except KeyboardInterrupt:
        logger.info("stopping")
        return 0
    except (KafkaStartError, StackStartError, TimeoutError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        if kafka is not None:
            kafka.stop()
        logger.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
