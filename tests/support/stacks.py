"""The four services (or some of them) as processes on the session's Kafka broker."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

from pydantic import ValidationError

from docflow_local.processes import free_port
from docflow_local.stack import Service, Stack, services
from docflow_shared.events import Event, parse_event
from docflow_shared.kafka_admin import ensure_topics
from docflow_shared.topics import specs
from support.seaweedfs import S3Server


@dataclass(frozen=True)
class BlobPlace:
    """Where a stack keeps its blobs: under its data folder (``s3`` None, the
    default), or under a prefix of its own in the S3 server's bucket; and what
    the tests see there."""

    s3: S3Server | None = None
    prefix: str = field(default_factory=lambda: f"e2e-{uuid4().hex[:12]}")

    @property
    def kind(self) -> str:
        return "local" if self.s3 is None else "s3"

    def env(self) -> dict[str, str]:
        return {} if self.s3 is None else self.s3.env(self.prefix)

    def stored(self, stack: Stack) -> dict[str, int]:
        """Every stored blob (blob key: size), unfinished writes included."""
        if self.s3 is None:
            root = stack.data_dir / "blobs"
            return {
                str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()
            }
        client, found = self.s3.client(), {}
        pages = client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                found[item["Key"].removeprefix(f"{self.prefix}/")] = item["Size"]
        uploads = client.list_multipart_uploads(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/")
        for upload in uploads.get("Uploads", []):
            found[f"(unfinished upload) {upload['Key']}"] = -1
        return found


@contextmanager
def running_stack(
    kafka_bootstrap: str,
    data_dir: Path,
    log_dir: Path,
    *,
    only: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    blobs: BlobPlace | None = None,
    metrics_ports: bool = False,
    ocr_replicas: int = 1,
) -> Iterator[Stack]:
    """The services (``only`` these, by name) started on free ports, ready, then stopped;
    their blobs where ``blobs`` says (by default, the local folder); with
    ``metrics_ports``, each serves /metrics on a free port of its own; with
    ``ocr_replicas`` > 1, more OCR consumers ("ocr-2", ...) in the same group.

    Every stack reads the session's topics from their start, leftovers of
    earlier tests included: tests look only at their own documents.
    """
    asyncio.run(ensure_topics(kafka_bootstrap, specs()))
    chosen: list[Service] = services(free_port(), free_port(), free_port(), free_port())
    ocr = next(s for s in chosen if s.name == "ocr")
    chosen += [
        dataclasses.replace(ocr, name=f"ocr-{n}", port=free_port())
        for n in range(2, ocr_replicas + 1)
    ]
    if metrics_ports:
        chosen = [dataclasses.replace(s, metrics_port=free_port()) for s in chosen]
    stack = Stack(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=data_dir,
        services=[s for s in chosen if only is None or s.name.split("-")[0] in only],
        log_dir=log_dir,
        extra_env={**(blobs or BlobPlace()).env(), **(extra_env or {})},
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
