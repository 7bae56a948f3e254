"""Every Kafka topic docflow uses, in one place.

Names follow ``docflow.document.<event>.v<N>`` (docs/architecture.md, "Event contract").
Every topic is keyed by document id, so one document's events stay in order
within a topic. Who produces and who consumes each topic is listed in
``docs/events.md``; the event carried by each is the model in
``docflow_shared.events`` whose ``TOPIC`` names it.
"""

from dataclasses import dataclass, field
from uuid import UUID

UPLOADED = "docflow.document.uploaded.v1"
PROGRESSED = "docflow.document.progressed.v1"
EXTRACTED = "docflow.document.extracted.v1"
INDEXED = "docflow.document.indexed.v1"
FAILED = "docflow.document.failed.v1"
# Document operations, requested through the gateway.
RETRIED = "docflow.document.retried.v1"
CANCELLED = "docflow.document.cancelled.v1"
DELETED = "docflow.document.deleted.v1"
# The status service's announcements: a document made no progress for too long.
STALLED = "docflow.document.stalled.v1"
# A stage met a transient error (a dependency unavailable) and will try again.
RETRYING = "docflow.document.retrying.v1"

# Re-embedding every stored chunk with another model (docs/events.md,
# "Re-embedding"). Keyed by reindex id; not document events, so not in ALL.
REINDEX_REQUESTED = "docflow.reindex.requested.v1"
REINDEX_ADVANCED = "docflow.reindex.advanced.v1"
REINDEX_COMPLETED = "docflow.reindex.completed.v1"
REINDEX_FAILED = "docflow.reindex.failed.v1"

REINDEX: tuple[str, ...] = (
    REINDEX_REQUESTED,
    REINDEX_ADVANCED,
    REINDEX_COMPLETED,
    REINDEX_FAILED,
)
"""The re-embedding operation's events, projected by the status service."""

# Messages a consumer could not handle, kept for people (docs/events.md,
# "Failures"): unreadable ones, and those whose transient error outlasted
# every retry. Re-driven to their topic once the cause is fixed.
DEAD_LETTER = "docflow.deadletter.v1"

# Where a service parks a message whose handling met a transient error, one
# topic per service and delay level, so the original partition goes on.
RETRY_LEVELS = 3
# The OCR consumer ("ocr": the extractor's user, its own retry topics, so that a
# parked range comes back to an OCR consumer, not to the extractor).
RETRYING_SERVICES = ("extractor", "embedder", "ocr")


def retry_topic(service: str, level: int) -> str:
    """The topic of ``service``'s ``level``-th retry (0-based)."""
    return f"docflow.retry.{service}.{level}.v1"


RETRY: tuple[str, ...] = tuple(
    retry_topic(service, level) for service in RETRYING_SERVICES for level in range(RETRY_LEVELS)
)

# The webhook dispatcher's (docs/events.md, "Webhooks"): deliveries whose
# endpoint did not answer 2xx wait here, one topic per delay level, as the
# stages' messages do; not in RETRY, which are the stages' own.
WEBHOOKS_RETRY: tuple[str, ...] = tuple(
    retry_topic("webhooks", level) for level in range(RETRY_LEVELS)
)

# OCR (docs/events.md, "OCR"): a scan's pages in ranges, read by the OCR
# consumer's replicas (its own Deployment, scaled on its lag), and their text
# back to the extractor, which puts the pages together and cuts them. Keyed
# by document and range (requests) and by document (results); not document
# events, so not in ALL. Kept a week: a range waits minutes at most.
OCR_REQUESTED = "docflow.ocr.requested.v1"
OCR_DONE = "docflow.ocr.done.v1"
OCR: tuple[str, ...] = (OCR_REQUESTED, OCR_DONE)


def round_robin(subject: UUID, index: int, partitions: int) -> int | None:
    """Where the ``index``-th of a subject's records goes (``OcrRangeRequested``):
    round robin over ``partitions``, from a partition the subject's id chooses, so a
    scan's ranges spread evenly over the partitions (so over the OCR consumers),
    documents start on different ones, and a range sent again goes where it went;
    None (the key's hash) when the partition count is not known."""
    return (subject.int + index) % partitions if partitions > 0 else None


# Published by the status service for other systems: the latest status of
# each document, compacted. Not a document event: the status service does
# not consume it (it is the projection's output, not its input).
STATUS = "docflow.document.status.v1"

ALL: tuple[str, ...] = (
    UPLOADED,
    PROGRESSED,
    EXTRACTED,
    INDEXED,
    FAILED,
    RETRIED,
    CANCELLED,
    DELETED,
    STALLED,
    RETRYING,
)
"""The document events: what happened, kept so that replaying them rebuilds the read model."""


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created when docflow creates it (local broker, tests).

    In production the topics are declared as Strimzi ``KafkaTopic`` resources
    instead; keep the two in step.
    """

    name: str
    # The partition count caps how many replicas of one consumer group can work
    # in parallel, so it is the upper bound for scaling the extractor/embedder.
    partitions: int = 6
    replication_factor: int = 1
    # Topic-level configuration (retention, clean-up policy).
    config: dict[str, str] = field(default_factory=dict)


# The document events are the source of truth: the status read model is
# rebuilt by replaying them from offset 0 (``python -m docflow_status
# rebuild``), so they are kept, not expired (cancellations and deletions are
# compacted instead: ``STOPS_CONFIG``). Size the disks for it (a chunk
# batch is at most ~256 KiB; docs/events.md).
EVENTS_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}

# The status topic keeps the latest snapshot per document (key = document
# id). Segments roll hourly so compaction has closed segments to work on.
STATUS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(60 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.5",
}


# Cancellations and deletions: every extractor and embedder replica reads
# both topics whole at start (``cancellations.py``), so they are compacted,
# keyed by tenant and document (``DocumentCancelled.kafka_key``): what a
# replica reads is bounded by the documents ever cancelled or deleted, not by
# how many requests there were. Compaction keeps each key's latest record (a
# document's latest cancelled attempt, which stops its earlier attempts too;
# its deletion) and every record younger than a day: a consumer group less
# than a day behind (the status service, the embedder's deletions) still sees
# every one. Hourly segments give the cleaner closed segments to work on.
STOPS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(60 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": str(24 * 60 * 60 * 1000),
}
STOPS: tuple[str, ...] = (CANCELLED, DELETED)
"""The compacted command topics every replica of a stage reads whole."""


# A parked message waits minutes at most; a week leaves time to look into it.
RETRY_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 60 * 60 * 1000)}


# Who reads what, for the consumer-lag gauge (the status service's
# ``docflow_consumer_lag_messages``): the consumer groups that do the services'
# work and the topics each reads. The group ids are the services' own
# (tests/unit/shared/test_architecture_docs.py checks they agree); one consumer
# per group in a process. Retry groups are left out: their messages wait on purpose.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "docflow-extractor": (UPLOADED,),
    "docflow-extractor-retried": (RETRIED,),
    "docflow-extractor-ocr": (OCR_REQUESTED,),
    "docflow-extractor-ocr-done": (OCR_DONE,),
    "docflow-embedder": (EXTRACTED,),
    "docflow-embedder-deletions": (DELETED,),
    "docflow-status": (*ALL, *REINDEX, OCR_REQUESTED),
    # The webhook dispatcher (python -m docflow_gateway webhooks), as the gateway's user.
    "docflow-gateway-webhooks": (STATUS,),
}


def specs(partitions: int = 6, replication_factor: int = 1) -> list[TopicSpec]:
    """The topics docflow needs, with the given sizing."""
    return [
        *(
            TopicSpec(
                name,
                partitions,
                replication_factor,
                dict(STOPS_CONFIG if name in STOPS else EVENTS_CONFIG),
            )
            for name in (*ALL, *REINDEX, DEAD_LETTER)
        ),
        *(
            TopicSpec(name, partitions, replication_factor, dict(RETRY_CONFIG))
            for name in (*RETRY, *WEBHOOKS_RETRY, *OCR)
        ),
        TopicSpec(STATUS, partitions, replication_factor, dict(STATUS_CONFIG)),
    ]
