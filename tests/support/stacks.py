"""The four services (or some of them) as processes on the session's Kafka broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack, services
from docflow_shared.events import Event, parse_event
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs


@contextmanager
def running_stack(
    kafka_bootstrap: str,
    data_dir: Path,
    log_dir: Path,
    *,
    only: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """The services (``only`` these, by name) started on free ports, ready, then stopped.

    Every stack reads the session's topics from their start, leftovers of
    earlier tests included: tests look only at their own documents.
    """
    asyncio.run(ensure_topics(kafka_bootstrap, specs()))
    chosen: list[Service] = services(free_port(), free_port(), free_port(), free_port())
    stack = Stack(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=data_dir,
        services=[s for s in chosen if only is None or s.name in only],
        log_dir=log_dir,
        extra_env=extra_env or {},
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def readable_events(values: list[bytes]) -> list[Event]:
    """The events among a shared topic's records; tests/service/test_failures.py puts
    unreadable ones there on purpose."""
    events = []
    for value in values:
        try:
            events.append(parse_event(value))
        except ValidationError:
            continue
    return events
