"""Every Kafka topic docflow uses, in one place.

Names follow ``docflow.document.<event>.v<N>`` (DESIGN.md, "Event contract").
Every topic is keyed by document id, so one document's events stay in order
within a topic. Who produces and who consumes each topic is listed in
``docs/events.md``; the event carried by each is the model in
``docflow_shared.events`` whose ``TOPIC`` names it.
"""

from dataclasses import dataclass

UPLOADED = "docflow.document.uploaded.v1"
PROGRESSED = "docflow.document.progressed.v1"
EXTRACTED = "docflow.document.extracted.v1"
INDEXED = "docflow.document.indexed.v1"
FAILED = "docflow.document.failed.v1"
# Document operations, requested through the gateway.
RETRIED = "docflow.document.retried.v1"
CANCELLED = "docflow.document.cancelled.v1"
DELETED = "docflow.document.deleted.v1"

ALL: tuple[str, ...] = (
    UPLOADED,
    PROGRESSED,
    EXTRACTED,
    INDEXED,
    FAILED,
    RETRIED,
    CANCELLED,
    DELETED,
)


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


def specs(partitions: int = 6, replication_factor: int = 1) -> list[TopicSpec]:
    """The topics docflow needs, with the given sizing."""
    return [TopicSpec(name, partitions, replication_factor) for name in ALL]
