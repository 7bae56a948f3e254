"""docflow's own Prometheus metrics shared by several services.

Every service's ``/metrics`` also has FastStream's consume/publish metrics
(``faststream_*``, ``messaging.make_broker``) and, on the HTTP services,
request metrics (``http_*``, ``http.service_app``). The embedder's model
calls are in ``docflow_embedder.adapters.instrumented``, the status
service's document gauges and end-to-end histogram in
``docflow_status.entrypoints.watchdog``. Names follow Prometheus' rules:
base units, ``_total`` for counters, no document ids in labels.
docs/operations.md lists them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram

# From a one-page Markdown file to a long PDF's extraction.
STAGE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class StageMetrics:
    """How long a stage spends on one message (``stage``: extracting, embedding …)."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        """``stage``: the service's own, shown (at 0) before its first message."""
        self.duration = Histogram(
            "docflow_stage_duration_seconds",
            "Time a stage spent handling one message: a whole document for extracting, "
            "one poll of chunk batches (of one or several documents) for embedding",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=registry,
        )
        self.duration.labels(stage)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Observe the block's duration, whether it returns or raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.duration.labels(stage).observe(time.perf_counter() - started)


class RetryMetrics:
    """Messages parked for a retry and messages given up on (``retries.Parking``)."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        """``stage``: the service's own, shown at 0 (a query for dead letters then
        finds a series before the first one)."""
        self.retries = Counter(
            "docflow_retries",
            "Messages parked on a retry topic after a transient error",
            ["stage"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "docflow_dead_letters",
            "Messages put on the dead-letter topic (unreadable, or out of retries)",
            ["stage"],
            registry=registry,
        )
        self.retries.labels(stage)
        self.dead_letters.labels(stage)


class RejectedEvents:
    """Events a consumer refused to act on because their fields do not belong together
    (``errors.UntrustedEvent``): forged, or a producer's bug. Any is worth an alert."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        """``service``: this process's, shown at 0 for each reason before the first."""
        self.service = service
        self.rejected = Counter(
            "docflow_events_rejected",
            "Events dead-lettered unapplied because their tenant, document and blob key "
            "do not belong together (reason: blob_key, tenant_id, tenant_changed)",
            ["service", "reason"],
            registry=registry,
        )
        for reason in ("blob_key", "tenant_id", "tenant_changed"):
            self.rejected.labels(service, reason)

    def count(self, reason: str) -> None:
        self.rejected.labels(self.service, reason).inc()
