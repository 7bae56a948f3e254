"""The projector's metrics: how long documents take from upload to the end.

(The document gauges by status are refreshed by the watchdog,
``watchdog.WatchdogMetrics``.)
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Histogram

from docflow_status.domain.projection import TERMINAL, DocumentState

# From a small Markdown file on an idle system to a long PDF behind a queue.
DOCUMENT_BUCKETS_S = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class ProjectionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.document_duration = Histogram(
            "docflow_document_duration_seconds",
            "From upload to completed, failed or cancelled (by the events' own times), "
            "observed once per document attempt by the replica that projected the end",
            ["outcome"],
            buckets=DOCUMENT_BUCKETS_S,
            registry=registry,
        )
        for outcome in sorted(TERMINAL):
            self.document_duration.labels(outcome.value)

    def observe_finished(self, documents: Sequence[DocumentState]) -> None:
        for document in documents:
            if document.created_at is None or document.completed_at is None:
                continue  # an end seen before the upload (out of order): no duration
            seconds = (document.completed_at - document.created_at).total_seconds()
            self.document_duration.labels(document.status.value).observe(max(0.0, seconds))
